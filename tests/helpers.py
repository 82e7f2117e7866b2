"""Small helpers shared by the tests."""

import io
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from incrementific.redis import connection
from incrementific.redis.keys import counter as key
from incrementific.redis_server import free_port

BASE_DIR = Path(__file__).resolve().parent.parent

MAX = 2**63 - 1
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}
OVERFLOW = {"detail": "The value would pass 9223372036854775807; nothing changed.", "code": "counter_overflow"}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}

# Everything that is not a whole number, as the issue lists it, in a JSON body.
NOT_INTEGERS = [True, False, 1.0, "1", "1.0", "1e3", " 5", "+5", "1_000", "٣", None, [1], {"v": 1}, -0.5]


def redis_value(user, name: str) -> int | None:
    raw = connection.client().hget(key(user.id, name), "v")
    return None if raw is None else int(raw)


def one_read_per_primary(*keys_: str) -> list[str]:
    """What ``redis_round_trips`` records for a read of these keys (store.get_many): one
    pipeline of HMGETs; on a Cluster, one for each primary that holds some, each led by the
    fence's INFO."""
    if connection.topology() != "cluster":
        return ["hmget"]
    client = connection.client()
    return ["info"] * len({client.nodes_manager.get_node_from_slot(client.keyslot(k)).name for k in keys_})


def counter_url(name: str, suffix: str = "") -> str:
    return f"/api/counters/{name}{suffix}"


def wsgi_environ(method: str, path: str, **headers: str) -> dict:
    """A WSGI environ for a body-less request, as gunicorn would pass it; headers by their
    environ names, e.g. HTTP_AUTHORIZATION="Bearer ..." (tests/test_wsgi.py, tests/harness/bench_ir.py)."""
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


@contextmanager
def gunicorn(data_dir: Path, redis_url: str, *args: str, log: Path | None = None, **env: str):
    """The service under a real gunicorn with the project's gunicorn.conf.py, as in production
    (DEBUG off, the project's own settings, a migrated SQLite under `data_dir`); yields its port
    once it is live (/livez), whether or not Redis answers. ``log``: where its output goes."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")},
        "SECRET_KEY": secrets.token_urlsafe(50),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(50),
        "DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "GUNICORN_LOG_LEVEL": "warning",
        **env,
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=BASE_DIR, check=True)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", *args]
    output = log.open("w") if log is not None else None
    stderr = subprocess.STDOUT if log else None
    server = subprocess.Popen([*command, "incrementific.wsgi"], env=env, cwd=BASE_DIR, stdout=output, stderr=stderr)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(30)
        if output is not None:
            output.close()
