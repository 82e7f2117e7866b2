"""CORS on the surfaces that clients call with a bearer token (the prototype's /v1 and bare paths,
/api), for a front end served from another origin, as the prototype's was. Never credentialed;
never on the web app or the admin; off unless CORS_ALLOWED_ORIGINS is set."""

import copy

import pytest
from django.conf import settings as django_settings
from django.test import Client

from accounts.services import api_key_create
from tests.helpers import redis_value

APP = "https://app.example.com"
CORS = "incrementific.middleware.CorsMiddleware"


@pytest.fixture
def cors(settings):
    """The settings as CORS_ALLOWED_ORIGINS=* makes them (each Client loads the middleware anew)."""

    def configure(origins: list[str]):
        settings.MIDDLEWARE = [CORS, *copy.copy(django_settings.MIDDLEWARE)]
        settings.CORS_ALLOW_ALL_ORIGINS = origins == ["*"]
        settings.CORS_ALLOWED_ORIGINS = [] if origins == ["*"] else origins

    return configure


def cors_headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", ["/v1/next", "/next", "/v1/register", "/api/counters/default/next", "/api/keys"])
def test_a_preflight_is_answered_without_credentials(cors, db, path):
    cors(["*"])
    r = Client().options(
        path,
        HTTP_ORIGIN=APP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert (r.status_code, r.content) == (200, b"")
    headers = cors_headers(r)
    assert headers["access-control-allow-origin"] == "*"
    assert {"authorization", "content-type"} <= set(headers["access-control-allow-headers"].split(", "))
    assert {"GET", "POST", "PUT", "DELETE"} <= set(headers["access-control-allow-methods"].split(", "))
    assert "access-control-allow-credentials" not in headers


def test_a_cross_origin_call_with_a_key_gets_its_answer_and_the_header(cors, alice):
    cors(["*"])
    _, key = api_key_create(user_id=alice.id, name="front end")
    r = Client().get("/v1/next", HTTP_ORIGIN=APP, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (r.status_code, r.json()) == (200, {"message": "Incremented", "result": 1})
    assert cors_headers(r) == {"access-control-allow-origin": "*", "access-control-expose-headers": "Retry-After"}
    assert redis_value(alice, "default") == 1
    # An error too, so that the script can read what went wrong.
    r = Client().get("/v1/next", HTTP_ORIGIN=APP, HTTP_AUTHORIZATION="Bearer inc_1.nope")
    assert r.status_code == 401
    assert cors_headers(r)["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/", "/login", "/admin/login/", "/api-auth/login/", "/healthz"])
def test_the_pages_and_the_admin_stay_same_origin(cors, db, path):
    cors(["*"])
    r = Client().get(path, HTTP_ORIGIN=APP)
    assert cors_headers(r) == {}
    r = Client().options(path, HTTP_ORIGIN=APP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert cors_headers(r) == {}


def test_a_list_of_origins_lets_in_those_only_and_says_that_answers_vary(cors, alice, alice_client):
    cors([APP, "http://localhost:5173"])
    _, key = api_key_create(user_id=alice.id, name="front end")
    allowed = Client().get("/v1/current", HTTP_ORIGIN="http://localhost:5173", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert cors_headers(allowed)["access-control-allow-origin"] == "http://localhost:5173"
    other = Client().get("/v1/current", HTTP_ORIGIN="https://evil.example", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (other.status_code, cors_headers(other)) == (200, {})  # the browser withholds the answer
    # Without an Origin (a server, curl) the answer is the same, and still says it varies by Origin.
    plain = Client().get("/api/counters/default", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (plain.status_code, cors_headers(plain), plain["Vary"]) == (200, {}, "Accept, origin")
    assert "origin" not in Client().get("/login").get("Vary", "").lower()


def test_cors_is_off_unless_asked_for(db):
    assert CORS not in django_settings.MIDDLEWARE
    r = Client().options("/v1/next", HTTP_ORIGIN=APP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert (r.status_code, cors_headers(r)) == (401, {})


def test_make_runs_environment_lets_any_origin_in(tmp_path):
    from incrementific import local

    assert local.environment({"DATA_DIR": str(tmp_path)})["CORS_ALLOWED_ORIGINS"] == "*"
    assert local.environment({"DATA_DIR": str(tmp_path), "CORS_ALLOWED_ORIGINS": ""})["CORS_ALLOWED_ORIGINS"] == ""
