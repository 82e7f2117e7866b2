"""The prototype's surface: its paths, bodies and answers, with its flaws fixed."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.models import ApiKey
from tests.helpers import redis_value

JSON_API = "application/vnd.api+json"
PASSWORD = "correct-horse-battery"


def register(client, body, path="/v1/register", **kwargs):
    return client.post(path, body, format="json", **kwargs)


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def key(api_client, db):
    return register(api_client, {"username": "proto", "password": PASSWORD}).json()["apiKey"]


@pytest.fixture
def proto():
    return get_user_model().objects.get(username="proto")


@pytest.mark.parametrize("path", ["/v1/register", "/register", "/register/"])
def test_register_answers_an_api_key(api_client, db, path):
    r = register(api_client, {"username": "proto", "password": PASSWORD}, path)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"message", "apiKey"}
    assert body["message"] == "Successfully registered proto"
    assert body["apiKey"].startswith("inc_")
    user = get_user_model().objects.get(username="proto")
    assert user.check_password(PASSWORD)
    assert redis_value(user, "default") == 0
    assert ApiKey.objects.get().user == user


def test_register_takes_an_email_in_place_of_a_username(api_client, db):
    r = register(api_client, {"email": "ada@example.com", "password": PASSWORD})
    assert r.json()["message"] == "Successfully registered ada@example.com"


def test_register_takes_a_form_body(api_client, db):
    r = api_client.post("/register", {"username": "proto", "password": PASSWORD})
    assert r.status_code == 200
    assert r.json()["message"] == "Successfully registered proto"


def test_an_existing_user_with_the_right_password_gets_another_key(api_client, key, proto):
    r = register(api_client, {"username": "PROTO", "password": PASSWORD})
    assert r.status_code == 200
    second = r.json()["apiKey"]
    assert second != key
    assert ApiKey.objects.filter(user=proto).count() == 2
    assert with_key(key).get("/v1/current").status_code == with_key(second).get("/v1/current").status_code == 200


def test_an_existing_user_with_a_wrong_password_gets_a_401_and_no_key(api_client, key, proto):
    r = register(api_client, {"username": "proto", "password": "guessing-wildly"})
    assert r.status_code == 401
    assert r.json() == {"message": "Invalid username or password."}
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize(
    "body, message",
    [
        (None, "Missing request body"),
        ({}, "Missing request body"),
        ({"username": "proto"}, "Username and password are required"),
        ({"password": PASSWORD}, "Username and password are required"),
        ({"username": "", "password": PASSWORD}, "Username and password are required"),
        ({"username": 5, "password": PASSWORD}, "Username and password are required"),
        ([1, 2], "Username and password are required"),
        (
            {"username": "proto", "password": "short"},
            "password: This password is too short. It must contain at least 8 characters.",
        ),
    ],
)
def test_register_refuses_bad_bodies_in_the_prototypes_shape(api_client, db, body, message):
    r = api_client.post("/v1/register", body, format="json") if body is not None else api_client.post("/v1/register")
    assert r.status_code == 400
    assert r.json() == {"message": message}
    assert not get_user_model().objects.exists()


def test_register_refuses_malformed_json(api_client, db):
    r = api_client.post("/v1/register", '{"username": ', content_type="application/json")
    assert r.status_code == 400
    assert r.json()["message"].startswith("JSON parse error")


@pytest.mark.parametrize("path", ["/v1/next", "/next", "/next/"])
def test_next_increments_the_default_counter(key, proto, path):
    client = with_key(key)
    assert client.get(path).json() == {"message": "Incremented", "result": 1}
    assert client.get(path).json() == {"message": "Incremented", "result": 2}
    assert redis_value(proto, "default") == 2


@pytest.mark.parametrize("path", ["/v1/current", "/current"])
def test_current_reads_it(key, proto, path):
    with_key(key).get("/v1/next")
    r = with_key(key).get(path)
    assert r.json() == {"message": "Current", "result": 1}
    assert isinstance(r.json()["result"], int)


@pytest.mark.parametrize("path", ["/v1/current", "/v1/set", "/set"])
def test_set_takes_the_original_challenges_form_body(key, proto, path):
    # curl -X PUT -H "Authorization: Bearer $KEY" -d current=1000 .../v1/current
    r = with_key(key).put(path, "current=1000", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200
    assert r.json() == {"message": "Set", "result": 1000}
    assert redis_value(proto, "default") == 1000


def test_set_takes_json(key, proto):
    r = with_key(key).put("/v1/set", {"current": 42}, format="json")
    assert r.json() == {"message": "Set", "result": 42}
    assert with_key(key).get("/v1/next").json()["result"] == 43


@pytest.mark.parametrize("raw", ["5abc", "", "-1", "1.5", "+5", "9223372036854775808"])
def test_set_refuses_what_the_prototype_accepted(key, proto, raw):
    r = with_key(key).put("/v1/current", f"current={raw}", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400
    assert list(r.json()) == ["message"]
    assert r.json()["message"].startswith("current: ")
    assert redis_value(proto, "default") == 0


@pytest.mark.parametrize("body", [{}, {"current": "7"}, {"current": 1.0}, {"current": True}, {"value": 7}])
def test_set_refuses_bad_json(key, proto, body):
    r = with_key(key).put("/v1/set", body, format="json")
    assert r.status_code == 400
    assert r.json()["message"].startswith("current: ")
    assert redis_value(proto, "default") == 0


def test_set_is_put_only(key):
    r = with_key(key).get("/v1/set")
    assert r.status_code == 405
    assert r.json() == {"message": 'Method "GET" not allowed.'}


def test_head_on_next_takes_no_value(key, proto):
    # Django routes HEAD to GET; a monitor's HEAD would use up a number nobody sees.
    r = with_key(key).head("/v1/next")
    assert r.status_code == 405
    assert r["Allow"] == "GET, OPTIONS"
    assert with_key(key).get("/v1/next").json() == {"message": "Incremented", "result": 1}


@pytest.mark.parametrize("auth", [None, "Bearer inc_not-a-key", "Bearer not.a.jwt"])
def test_no_or_bad_credentials_are_a_401_in_the_prototypes_shape(db, auth):
    client = APIClient()
    if auth:
        client.credentials(HTTP_AUTHORIZATION=auth)
    for r in [client.get("/v1/next"), client.get("/current"), client.put("/set", {"current": 1}, format="json")]:
        assert r.status_code == 401
        assert list(r.json()) == ["message"]


def test_a_jwt_works_too(alice_client, alice):
    assert alice_client.get("/v1/next").json() == {"message": "Incremented", "result": 1}


def test_another_users_key_acts_on_their_own_counter_only(key, proto, alice_client, alice):
    with_key(key).get("/v1/next")
    assert alice_client.get("/v1/current").json()["result"] == 0
    assert redis_value(proto, "default") == 1


def test_a_deleted_default_counter_is_a_404(key, proto):
    client = with_key(key)
    client.delete("/api/counters/default")
    r = client.get("/v1/next")
    assert r.status_code == 404
    assert r.json() == {"message": "Not found."}


def test_redis_down_is_a_503_in_the_prototypes_shape(key, private_redis):
    private_redis.stop()
    r = with_key(key).get("/v1/next")
    assert r.status_code == 503
    assert r.json() == {"message": "Counter storage is unavailable, try again."}


class TestJsonApi:
    def test_next_current_and_set_answer_json_api_documents(self, key, proto):
        client = with_key(key)
        for method, path, value in [("get", "/v1/next", 1), ("get", "/v1/current", 1)]:
            r = getattr(client, method)(path, HTTP_ACCEPT=JSON_API)
            assert r.status_code == 200
            assert r["Content-Type"] == JSON_API
            assert r.json() == {"data": {"type": "counters", "id": "default", "attributes": {"value": value}}}
        r = client.put(
            "/v1/current", "current=7", content_type="application/x-www-form-urlencoded", HTTP_ACCEPT=JSON_API
        )
        assert r.json() == {"data": {"type": "counters", "id": "default", "attributes": {"value": 7}}}

    def test_set_takes_a_json_api_document(self, key, proto):
        body = '{"data": {"type": "counters", "id": "default", "attributes": {"value": 99}}}'
        r = with_key(key).put("/v1/set", body, content_type=JSON_API, HTTP_ACCEPT=JSON_API)
        assert r.status_code == 200
        assert r.json()["data"]["attributes"] == {"value": 99}
        assert redis_value(proto, "default") == 99

    @pytest.mark.parametrize(
        "resource, field",
        [
            ({"id": "default", "attributes": {"value": 5}}, "type"),
            ({"type": "keys", "id": "default", "attributes": {"value": 5}}, "type"),
            ({"type": "counters", "attributes": {"value": 5}}, "id"),
        ],
    )
    def test_a_json_api_document_names_its_type_and_id_or_is_a_400(self, key, proto, resource, field):
        r = with_key(key).put("/v1/set", {"data": resource}, format="json", HTTP_ACCEPT=JSON_API)
        assert r.status_code == 400
        [error] = r.json()["errors"]
        assert (error["code"], error["detail"].split(":")[0]) == ("invalid", f"data.{field}")
        assert redis_value(proto, "default") == 0

    def test_errors_are_json_api_error_objects(self, key, proto):
        r = with_key(key).put(
            "/v1/set", "current=5abc", content_type="application/x-www-form-urlencoded", HTTP_ACCEPT=JSON_API
        )
        assert r.status_code == 400
        assert r["Content-Type"] == JSON_API
        [error] = r.json()["errors"]
        assert error["status"] == "400"
        assert error["code"] == "invalid"
        assert error["detail"].startswith("current: Must be a whole number")
        r = APIClient().get("/v1/next", HTTP_ACCEPT=JSON_API)
        assert r.status_code == 401
        assert r.json() == {
            "errors": [
                {
                    "status": "401",
                    "code": "not_authenticated",
                    "detail": "Authentication credentials were not provided.",
                }
            ]
        }

    def test_register_answers_a_json_api_document(self, api_client, db):
        r = register(api_client, {"username": "proto", "password": PASSWORD}, HTTP_ACCEPT=JSON_API)
        assert r.status_code == 200
        data = r.json()["data"]
        assert data["type"] == "api-keys"
        assert data["attributes"]["message"] == "Successfully registered proto"
        assert data["id"] == ApiKey.objects.get().prefix
        assert data["attributes"]["apiKey"].startswith(data["id"])


def test_next_past_the_maximum_is_a_409_in_the_prototypes_shape(key, proto):
    client = with_key(key)
    client.put("/v1/set", {"current": 2**63 - 1}, format="json")
    r = client.get("/v1/next")
    assert r.status_code == 409
    assert r.json() == {"message": "The value would pass 9223372036854775807; nothing changed."}
    assert redis_value(proto, "default") == 2**63 - 1


@pytest.mark.parametrize("username", ["nul\x00byte", "bad name!", "x" * 151])
def test_register_refuses_a_malformed_username_before_looking_it_up(api_client, db, username):
    r = register(api_client, {"username": username, "password": PASSWORD})
    assert r.status_code == 400
    assert r.json()["message"].startswith("username: ")
    assert not get_user_model().objects.exists()
