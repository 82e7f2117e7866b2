import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.db import OperationalError
from django.test import Client

from counters import selectors
from tests.helpers import BASE_DIR, NOT_FOUND, gunicorn, redis_value

SERVER_ERROR = {"detail": "Server error.", "code": "server_error"}


@pytest.mark.parametrize("path", ["/api/nothing", "/api/counters/x/y/z", "/nothing", "/api/auth/nope"])
def test_unknown_paths_are_a_json_404(alice_client, path):
    r = alice_client.get(path)
    assert r.status_code == 404
    assert r["Content-Type"] == "application/json"
    assert r.json() == NOT_FOUND


def test_a_wrong_method_is_a_json_405(alice_client):
    r = alice_client.put("/api/counters", {"name": "x"}, format="json")
    assert r.status_code == 405
    assert r.json() == {"detail": 'Method "PUT" not allowed.', "code": "method_not_allowed"}


def test_an_unsupported_media_type_is_a_json_415(alice_client, alice):
    r = alice_client.post("/api/counters", "name=x", content_type="text/plain")
    assert r.status_code == 415
    assert r.json() == {"detail": 'Unsupported media type "text/plain" in request.', "code": "unsupported_media_type"}


@pytest.mark.parametrize("body", ['{"value": ', "{'value': 1}", '{"value": 1}}', "\xff\xfe", "[" * 10000 + "]" * 10000])
def test_a_malformed_body_is_a_json_400_and_changes_nothing(alice_client, alice, body):
    r = alice_client.put("/api/counters/default", body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["code"] == "parse_error"
    assert r.json()["detail"].startswith("JSON parse error")
    assert redis_value(alice, "default") == 0


def test_a_huge_integer_literal_is_a_400(alice_client, alice):
    r = alice_client.put("/api/counters/default", '{"value": ' + "9" * 5000 + "}", content_type="application/json")
    assert r.status_code == 400
    assert redis_value(alice, "default") == 0


def test_an_oversized_body_is_a_json_413(alice_client, alice, settings):
    body = json.dumps({"value": 1, "pad": "x" * (settings.MAX_REQUEST_BODY_BYTES + 1)})
    r = alice_client.put("/api/counters/default", body, content_type="application/json")
    assert r.status_code == 413
    assert r.json() == {"detail": "The request body is too large.", "code": "request_too_large"}
    assert redis_value(alice, "default") == 0


@pytest.mark.urls("tests.urls_boom")
@pytest.mark.parametrize("path", ["/boom", "/plain-boom"])
def test_a_crash_is_a_json_500_without_a_traceback(db, path):
    client = Client(raise_request_exception=False)
    r = client.get(path)
    assert r.status_code == 500
    assert r.json() == SERVER_ERROR
    assert b"secret internals" not in r.content
    assert b"Traceback" not in r.content


def test_a_database_outage_is_a_json_503(alice_client, monkeypatch):
    def down(**kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr("counters.views.counter_list", down)
    r = alice_client.get("/api/counters")
    assert r.status_code == 503
    assert r.json() == {"detail": "The database is unavailable, try again.", "code": "database_unavailable"}
    assert selectors.counter_list is not down


@pytest.mark.parametrize(
    "path",
    [
        "/api/counters?format=nope",
        "/v1/next?format=nope",
        "/api/counters/default?format=x",
        # found by schemathesis: DRF reads an empty format as none and a repeated one as its last
        "/api/counters?format=",
        "/v1/current?format=",
        "/api/counters/default?format=json&format=json",
    ],
)
def test_an_unknown_format_is_a_json_404_not_a_500(alice_client, path):
    r = alice_client.get(path)
    assert r.status_code == 404
    assert r.json() in (NOT_FOUND, {"message": "Not found."})


@pytest.mark.parametrize("query", ["?format=", "?format=json&format=api"])
def test_next_with_an_empty_or_repeated_format_is_a_404_and_takes_nothing(alice_client, query):
    for path in ["/api/counters/default/next" + query, "/v1/next" + query]:
        r = alice_client.post(path) if path.startswith("/api") else alice_client.get(path)
        assert r.status_code == 404, path
        assert r.json() in (NOT_FOUND, {"message": "Not found."})
    assert alice_client.get("/api/counters/default").json()["value"] == 0


def test_a_browser_gets_a_page_for_an_unknown_address_and_the_api_stays_json(client, db):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = client.get("/no/such/page", HTTP_ACCEPT=browser)
    assert (r.status_code, r["Content-Type"]) == (404, "text/html; charset=utf-8")
    assert "No such page" in r.text
    for path, accept in [("/api/nothing", browser), ("/no/such/page", "*/*")]:
        r = client.get(path, HTTP_ACCEPT=accept)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), path
    r = client.get("/v1/nothing", HTTP_ACCEPT=browser)
    assert (r.status_code, r.json()) == (404, {"message": "Not found."})


def test_favicon_ico_points_at_the_icon(client, db):
    r = client.get("/favicon.ico")
    assert r.status_code == 302
    assert re.fullmatch(r"/static/web/favicon\.[0-9a-f]{12}\.svg", r["Location"])
    assert client.get(r["Location"]).status_code == 200


# The prototype's shape on every error of its paths, and one compact JSON style everywhere.
PROTOTYPE_ERRORS = [
    ("get", "/v1/nothing", {}, 404, b'{"message":"Not found."}'),
    ("get", "/v1/next/extra", {}, 404, b'{"message":"Not found."}'),
    ("delete", "/v1/next", {}, 405, b'{"message":"Method \\"DELETE\\" not allowed."}'),
    ("head", "/next", {}, 405, b""),  # HEAD answers without a body
    ("put", "/v1/set", {"data": "current=1", "content_type": "text/plain"}, 415,
     b'{"message":"Unsupported media type \\"text/plain\\" in request."}'),
    ("put", "/set", {"data": "x" * 2_000_000, "content_type": "application/x-www-form-urlencoded"}, 413,
     b'{"message":"The request body is too large."}'),
    ("put", "/v1/current", {"data": "", "content_type": "text/plain", "CONTENT_LENGTH": "many"}, 400,
     b'{"message":"Invalid Content-Length."}'),
]  # fmt: skip


@pytest.mark.parametrize("method, path, extra, status, body", PROTOTYPE_ERRORS)
def test_every_error_of_the_prototypes_paths_has_its_shape(alice_client, alice, method, path, extra, status, body):
    r = getattr(alice_client, method)(path, **extra)
    assert r.status_code == status
    assert r.content == body
    assert redis_value(alice, "default") == 0


def test_a_throttled_prototype_call_is_a_429_in_its_shape(api_client, db, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "1/hour"}
    body = {"username": "proto", "password": "correct-horse-battery"}
    assert api_client.post("/v1/register", body, format="json").status_code == 200
    r = api_client.post("/v1/register", body, format="json")
    assert (r.status_code, r["Retry-After"]) == (429, r["Retry-After"])
    assert list(r.json()) == ["message"]
    assert r.json()["message"].startswith("Request was throttled. Expected available in ")


def test_a_json_api_client_gets_json_api_errors_from_outside_drf_too(alice_client):
    r = alice_client.get("/v1/nothing", HTTP_ACCEPT="application/vnd.api+json")
    assert (r.status_code, r["Content-Type"]) == (404, "application/vnd.api+json")
    assert r.content == b'{"errors":[{"status":"404","code":"not_found","detail":"Not found."}]}'


@pytest.mark.urls("tests.urls_boom")
@pytest.mark.parametrize("path", ["/v1/boom", "/v1/plain-boom"])
def test_a_crash_under_the_prototypes_paths_is_its_500(db, path):
    r = Client(raise_request_exception=False).get(path)
    assert (r.status_code, r["Content-Type"], r.content) == (500, "application/json", b'{"message":"Server error."}')


@pytest.mark.parametrize(
    "method, path, extra, status, body",
    [
        ("get", "/api/nothing", {}, 404, b'{"detail":"Not found.","code":"not_found"}'),
        ("get", "/nowhere", {}, 404, b'{"detail":"Not found.","code":"not_found"}'),
        ("put", "/api/counters/default", {"data": "x" * 70_000, "content_type": "application/json"}, 413,
         b'{"detail":"The request body is too large.","code":"request_too_large"}'),
        ("get", "/api/counters", {"HTTP_HOST": "evil.example"}, 400, b'{"detail":"Bad request.","code":"bad_request"}'),
    ],
)  # fmt: skip
def test_the_apis_errors_from_outside_drf_are_compact_json_like_the_rest(
    alice_client, method, path, extra, status, body
):
    r = getattr(alice_client, method)(path, **extra)
    assert (r.status_code, r["Content-Type"], r.content) == (status, "application/json", body)


def _with_debug(path: str, tmp_path) -> str:
    """One request with DEBUG on, in a process of its own (DEBUG decides the middleware at start)."""
    code = (
        "import django; django.setup();"
        "from django.conf import settings; settings.ROOT_URLCONF = 'tests.urls_boom';"
        "from django.test import Client;"
        f"r = Client(raise_request_exception=False).get({path!r}, HTTP_HOST='localhost');"
        "print(r.status_code, r['Content-Type'], r.content.decode())"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "JWT_SIGNING_KEY", "DATABASE_URL")},
        "DJANGO_SETTINGS_MODULE": "incrementific.settings",
        "DEBUG": "true",
        "DATA_DIR": str(tmp_path),
    }
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=BASE_DIR)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize(
    "path, answer",
    [
        ("/api/nothing", '404 application/json {"detail":"Not found.","code":"not_found"}'),
        ("/v1/nothing", '404 application/json {"message":"Not found."}'),
        ("/api/boom", '500 application/json {"detail":"Server error.","code":"server_error"}'),
        ("/v1/plain-boom", '500 application/json {"message":"Server error."}'),
    ],
)
def test_with_debug_on_the_api_still_answers_json(tmp_path, path, answer):
    assert _with_debug(path, tmp_path) == answer


def test_with_debug_on_the_pages_keep_djangos_debug_page(tmp_path):
    assert _with_debug("/plain-boom", tmp_path).startswith("500 text/html; charset=utf-8 <!DOCTYPE html>")


def test_a_client_that_sends_a_whole_oversized_body_first_always_gets_its_413(private_redis, tmp_path):
    """urllib sends the whole body before it reads (no `Expect: 100-continue`). A server that
    closes with the body unread resets the connection, and the answer is lost with it."""
    answers = []
    with gunicorn(tmp_path, private_redis.url, ACCESS_LOG="False") as port:
        for size in [3 * 1024 * 1024] * 20 + [8 * 1024 * 1024] * 10:
            body = b"current=" + b"1" * size
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/set",
                data=body,
                method="PUT",
                headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer inc_1.x"},
            )
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as exc:
                answers.append((exc.code, exc.headers["Content-Type"], exc.read()))
            except OSError as exc:
                answers.append(type(exc).__name__)
    assert answers == [(413, "application/json", b'{"message":"The request body is too large."}')] * 30


def test_a_post_with_a_session_cookie_to_an_unknown_api_path_is_a_404_not_a_csrf_403(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    r = client.post("/api/counters/%C2%84/next")
    assert (r.status_code, r.content) == (404, b'{"detail":"Not found.","code":"not_found"}')


def test_a_multipart_body_with_no_part_is_a_400_and_takes_no_value(alice, alice_client):
    body = b"--b0undary\r\nNone--b0undary--\r\n"  # how schemathesis sends a null form
    r = alice_client.post("/api/counters/default/next", body, content_type="multipart/form-data; boundary=b0undary")
    assert (r.status_code, r.json()) == (
        400,
        {"detail": "Multipart form parse error - no part in the body", "code": "parse_error"},
    )
    assert alice_client.get("/api/counters/default").json()["value"] == 0


def test_an_empty_multipart_form_is_an_empty_form(alice, alice_client):
    r = alice_client.post(
        "/api/counters/default/next", b"--b0undary--\r\n", content_type="multipart/form-data; boundary=b0undary"
    )
    assert (r.status_code, r.json()["value"]) == (200, 1)
