"""incrementific/wsgi.py: bearer requests to the API skip the cookie middleware; everything else,
and every security header, is as before. Called as gunicorn calls it, with a WSGI environ."""

import json

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from incrementific import wsgi
from tests.conftest import bearer
from tests.helpers import redis_value, wsgi_environ

pytestmark = pytest.mark.django_db(transaction=True)  # a real request closes its connection at the end

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def call(method: str, path: str, *, authorization: str = "", cookie: str = "") -> tuple[int, dict, bytes]:
    headers = {"HTTP_AUTHORIZATION": authorization, "HTTP_COOKIE": cookie}
    environ = wsgi_environ(method, path, **{name: value for name, value in headers.items() if value})
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(headers)

    body = b"".join(wsgi.application(environ, start_response))
    return answer["status"], answer["headers"], body


def session_cookie(user) -> str:
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def test_a_bearer_request_to_the_api_keeps_every_security_header_and_sets_no_cookie(alice):
    status, headers, body = call("POST", "/api/counters/default/next", authorization=bearer(alice))
    assert status == 200
    assert json.loads(body)["value"] == 1
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert "Set-Cookie" not in headers
    assert "Cookie" not in headers.get("Vary", "")  # no session was looked at
    assert redis_value(alice, "default") == 1


def test_the_bearer_handler_has_no_session_csrf_auth_or_messages_middleware():
    assert set(wsgi.BROWSER_ONLY) <= set(settings.MIDDLEWARE)  # the full list is unchanged
    lean = [name for name in settings.MIDDLEWARE if name not in wsgi.BROWSER_ONLY]
    chain = []
    handler = wsgi.bearer_application._middleware_chain
    while hasattr(handler, "get_response") or hasattr(handler, "__wrapped__"):
        inner = getattr(handler, "__wrapped__", None) or handler
        if hasattr(inner, "get_response"):
            chain.append(f"{type(inner).__module__}.{type(inner).__name__}")
            handler = inner.get_response
        else:
            handler = inner
    assert chain == lean


def test_a_session_still_works_on_the_api_without_a_bearer_header(alice):
    status, _, body = call("GET", "/api/counters/default", cookie=session_cookie(alice))
    assert (status, json.loads(body)["value"]) == (200, 0)


def test_a_bad_bearer_header_is_refused_even_with_a_good_session(alice):
    status, _, body = call(
        "POST", "/api/counters/default/next", authorization="Bearer not-a-token", cookie=session_cookie(alice)
    )
    assert status == 401
    assert json.loads(body)["code"] == "token_not_valid"
    assert redis_value(alice, "default") == 0


@pytest.mark.parametrize("path", ["/admin/login/", "/api-auth/login/", "/login", "/signup"])
def test_pages_with_forms_get_their_cookies_whatever_the_authorization_header(alice, path):
    status, headers, body = call("GET", path, authorization=bearer(alice))
    assert status == 200
    assert "csrftoken=" in headers.get("Set-Cookie", "")


def test_the_host_is_validated_once_a_request_and_a_bad_one_still_refused(alice, monkeypatch):
    import django.http.request

    validated = []
    real = django.http.request.validate_host
    monkeypatch.setattr(django.http.request, "validate_host", lambda *a: validated.append(a[0]) or real(*a))
    status, _, body = call("POST", "/api/counters/default/next", authorization=bearer(alice))
    assert status == 200
    assert json.loads(body)["url"] == "http://127.0.0.1/api/counters/default"
    assert validated == ["127.0.0.1"]  # CommonMiddleware's check; the counter's URL reuses it

    environ = wsgi_environ("POST", "/api/counters/default/next", HTTP_AUTHORIZATION=bearer(alice))
    environ["HTTP_HOST"] = "evil.example"
    answer = {}
    body = b"".join(wsgi.application(environ, lambda status, headers, exc_info=None: answer.update(status=status)))
    assert answer["status"] == "400 Bad Request"
    assert json.loads(body) == {"detail": "Bad request.", "code": "bad_request"}
    assert redis_value(alice, "default") == 1  # nothing taken for the refused request
