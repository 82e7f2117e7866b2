"""Small helpers shared by the tests."""

import io
import sys

from django_redis import get_redis_connection

from counters.store import key

MAX = 2**63 - 1
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}
OVERFLOW = {"detail": "The value would pass 9223372036854775807; nothing changed.", "code": "counter_overflow"}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}

# Everything that is not a whole number, as the issue lists it, in a JSON body.
NOT_INTEGERS = [True, False, 1.0, "1", "1.0", "1e3", " 5", "+5", "1_000", "٣", None, [1], {"v": 1}, -0.5]


def redis_value(user, name: str) -> int | None:
    raw = get_redis_connection("counters").hget(key(user.id, name), "v")
    return None if raw is None else int(raw)


def counter_url(name: str, suffix: str = "") -> str:
    return f"/api/counters/{name}{suffix}"


def wsgi_environ(method: str, path: str, **headers: str) -> dict:
    """A WSGI environ for a body-less request, as gunicorn would pass it; headers by their
    environ names, e.g. HTTP_AUTHORIZATION="Bearer ..." (tests/test_wsgi.py, tests/bench_ir.py)."""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **headers,
    }
