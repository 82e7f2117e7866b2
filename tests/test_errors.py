import json
import re

import pytest
from django.db import OperationalError
from django.test import Client

from counters import selectors
from tests.helpers import NOT_FOUND, redis_value

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
    "path", ["/api/counters?format=nope", "/v1/next?format=nope", "/api/counters/default?format=x"]
)
def test_an_unknown_format_is_a_json_404_not_a_500(alice_client, path):
    r = alice_client.get(path)
    assert r.status_code == 404
    assert r.json() in (NOT_FOUND, {"message": "Not found."})


def test_a_browser_gets_a_page_for_an_unknown_address_and_the_api_stays_json(client, db):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = client.get("/no/such/page", HTTP_ACCEPT=browser)
    assert (r.status_code, r["Content-Type"]) == (404, "text/html; charset=utf-8")
    assert "No such page" in r.text
    for path, accept in [("/api/nothing", browser), ("/v1/nothing", browser), ("/no/such/page", "*/*")]:
        r = client.get(path, HTTP_ACCEPT=accept)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), path


def test_favicon_ico_points_at_the_icon(client, db):
    r = client.get("/favicon.ico")
    assert r.status_code == 302
    assert re.fullmatch(r"/static/web/favicon\.[0-9a-f]{12}\.svg", r["Location"])
    assert client.get(r["Location"]).status_code == 200
