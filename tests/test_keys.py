import re
import secrets
import time

import pytest
from rest_framework.test import APIClient

from accounts import keystore
from accounts.models import ApiKey
from accounts.services import api_key_hash, api_key_owner
from accounts.store import KEY_TOUCH_SECONDS
from incrementific.redis import keys
from tests.conftest import bearer
from tests.helpers import NO_CREDENTIALS, NOT_FOUND, counter_url, redis_value

REVOKED = {"detail": "Invalid or revoked API key.", "code": "invalid_api_key"}


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def alice_key(alice_client):
    return alice_client.post("/api/keys", {"name": "cron"}, format="json").json()["key"]


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(alice_client, alice):
    r = alice_client.post("/api/keys", {"name": "cron"}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {
        "id",
        "name",
        "prefix",
        "key",
        "counters",
        "actions",
        "expires_at",
        "created_at",
        "last_used_at",
    }
    assert body["name"] == "cron"
    # It names its owner, then 256 random bits (43 characters of base64url).
    assert re.fullmatch(rf"inc_{alice.id}\.[A-Za-z0-9_-]{{43}}", body["key"]), body["key"]
    assert body["prefix"] == body["key"][: len(f"inc_{alice.id}.") + 8]
    assert body["last_used_at"] is None
    row = ApiKey.objects.get(pk=body["id"])
    assert row.user == alice
    assert body["key"] not in (row.hashed, row.prefix, row.name)
    assert len(row.hashed) == 64


def test_a_key_works_on_every_counter_endpoint(alice_key, alice):
    client = with_key(alice_key)
    assert client.post(counter_url("default", "/next")).json()["value"] == 1
    assert client.get(counter_url("default")).json()["value"] == 1
    assert client.put(counter_url("default"), {"value": 10}, format="json").json()["value"] == 10
    assert client.post("/api/counters", {"name": "k"}, format="json").status_code == 201
    assert client.get("/api/counters").json()["count"] == 2
    assert client.delete(counter_url("k")).status_code == 204
    assert client.get("/api/auth/me").json()["username"] == "alice"
    assert redis_value(alice, "default") == 10


def test_the_list_shows_keys_without_secrets(alice_client, alice_key, alice):
    with_key(alice_key).post(counter_url("default", "/next"))
    r = alice_client.get("/api/keys")
    assert r.status_code == 200
    [listed] = r.json()
    assert set(listed) == {"id", "name", "prefix", "counters", "actions", "expires_at", "created_at", "last_used_at"}
    assert alice_key.startswith(listed["prefix"])
    assert len(listed["prefix"]) == len(f"inc_{alice.id}.") + 8
    assert listed["last_used_at"] is not None


def test_a_revoked_key_stops_working_at_once(alice_client, alice_key, alice):
    client = with_key(alice_key)
    assert client.post(counter_url("default", "/next")).status_code == 200  # remembered in Redis
    key_id = alice_client.get("/api/keys").json()[0]["id"]
    r = alice_client.delete(f"/api/keys/{key_id}")
    assert r.status_code == 204
    r = client.post(counter_url("default", "/next"))
    assert r.status_code == 401
    assert r.json() == REVOKED
    assert redis_value(alice, "default") == 1
    assert alice_client.get("/api/keys").json() == []


def test_a_key_redis_forgot_still_works_from_sql(alice_key, alice, redis_conn):
    redis_conn.flushdb()
    r = with_key(alice_key).get("/api/auth/me")
    assert r.status_code == 200
    assert redis_conn.exists(keystore.key(ApiKey.objects.get().hashed, alice.id)) == 1


def test_a_deactivated_users_keys_stop_at_once(alice_key, alice):
    client = with_key(alice_key)
    assert client.get("/api/auth/me").status_code == 200
    alice.is_active = False
    alice.save()
    assert client.get("/api/auth/me").json() == REVOKED
    assert client.post(counter_url("default", "/next")).status_code == 401


def test_a_deleted_users_keys_stop(alice_key, alice):
    alice.delete()
    assert with_key(alice_key).get("/api/counters").json() == REVOKED


@pytest.mark.parametrize("key", ["inc_", "inc_nope", "inc_" + "x" * 43, "inc_\u00e9t\u00e9", "inc_\u00ff" * 11])
def test_an_unknown_key_is_a_401(db, key):
    r = with_key(key).get("/api/counters")
    assert r.status_code == 401
    assert r.json() == REVOKED
    assert r["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_steady_path_with_a_key_runs_no_sql(alice_key, django_assert_num_queries, redis_round_trips):
    client = with_key(alice_key)
    client.post(counter_url("default", "/next"))  # remembers the key, loads the scripts
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert client.post(counter_url("default", "/next")).json()["value"] == 2
    assert redis_round_trips == ["evalsha"]  # the counter's script checks the key too


def test_keys_cannot_manage_keys(alice_key):
    client = with_key(alice_key)
    for r in [client.get("/api/keys"), client.post("/api/keys", {"name": "more"}, format="json")]:
        assert r.status_code == 403
        assert r.json() == {
            "detail": "API keys cannot manage API keys; log in with a password.",
            "code": "api_key_not_allowed",
        }
    assert ApiKey.objects.count() == 1


def test_another_users_key_is_a_404_and_stays(alice_client, bob):
    bobs_client = APIClient()
    bobs_client.force_authenticate(bob)
    bob_key_id = bobs_client.post("/api/keys", {"name": "bob"}, format="json").json()["id"]
    r = alice_client.delete(f"/api/keys/{bob_key_id}")
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert ApiKey.objects.filter(pk=bob_key_id).exists()


def test_no_credentials_is_a_401(api_client, db):
    r = api_client.get("/api/keys")
    assert r.status_code == 401
    assert r.json() == NO_CREDENTIALS


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}])
def test_a_bad_name_is_a_400(alice_client, body):
    r = alice_client.post("/api/keys", body, format="json")
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["name"]
    assert not ApiKey.objects.exists()


def test_revoking_with_redis_down_is_a_503_and_keeps_nothing_half_done(alice_client, alice_key, private_redis):
    # alice_key was made against the session server; this test's server knows nothing of it
    key_id = ApiKey.objects.get().pk
    private_redis.stop()
    r = alice_client.delete(f"/api/keys/{key_id}")
    assert r.status_code == 503
    assert ApiKey.objects.filter(pk=key_id).exists()


@pytest.mark.parametrize("path", ["/api/keys/null,null", "/api/keys/abc", "/api/keys/-1", "/api/keys/" + "9" * 30])
def test_a_key_id_that_is_not_a_number_is_a_404(alice_client, path):
    r = alice_client.delete(path)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


def test_a_key_still_works_after_redis_forgets_its_scripts(alice_key, alice, redis_conn, redis_round_trips):
    assert with_key(alice_key).post("/api/counters/default/next").json()["value"] == 1
    redis_conn.script_flush()
    redis_round_trips.clear()
    assert with_key(alice_key).post("/api/counters/default/next").json()["value"] == 2
    # The counter's script, which checks the key too, finds itself gone and is sent once.
    assert redis_round_trips == ["evalsha", "eval"]


# One round trip: a counter's script checks the key it is given beside the counter. The tests
# below hold that a key is still checked before anything is read, counted or changed.

COUNTER_CALLS = [
    ("post", "/api/counters/default/next", None),
    ("get", "/api/counters/default", None),
    ("put", "/api/counters/default", {"value": 5}),
    ("patch", "/api/counters/default", {"value": 5}),
    ("get", "/v1/next", None),
    ("get", "/v1/current", None),
    ("put", "/v1/current", {"current": 5}),
    ("put", "/v1/set", {"current": 5}),
]
V1_REVOKED = {"message": "Invalid or revoked API key."}


def call(client, method: str, path: str, body):
    return getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)


def with_bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def forged(user) -> str:
    """A key of the right shape that names ``user`` and was never issued."""
    return f"inc_{user.id}.{secrets.token_urlsafe(32)}"


def test_every_counter_call_with_a_key_is_one_round_trip_and_no_sql(
    alice_key, alice, django_assert_num_queries, redis_round_trips
):
    client = with_key(alice_key)
    for method, path, body in COUNTER_CALLS:  # each script loads once, the key's entry is written
        assert call(client, method, path, body).status_code == 200
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        for method, path, body in COUNTER_CALLS:
            assert call(client, method, path, body).status_code == 200
    assert redis_round_trips == ["evalsha"] * len(COUNTER_CALLS)
    assert redis_value(alice, "default") == 5


@pytest.mark.parametrize("method, path, body", COUNTER_CALLS)
def test_a_forged_key_naming_a_user_is_a_401_and_changes_nothing(alice, method, path, body, redis_conn, settings):
    settings.COUNTER_RATE_LIMIT = "1/hour"
    redis_conn.hset(keys.counter(alice.id, "default"), "v", 7)
    r = call(with_key(forged(alice)), method, path, body)
    assert r.status_code == 401
    assert r.json() == (V1_REVOKED if path.startswith("/v1") else REVOKED)
    assert r["WWW-Authenticate"] == 'Bearer realm="api"'
    assert redis_value(alice, "default") == 7
    # Nothing of alice's was counted: her one request of the hour is still hers.
    assert redis_conn.keys(f"ctr:{{u{alice.id}}}:~rate:*") == []
    assert call(with_bearer(alice), method, path, body).status_code == 200


def test_a_key_whose_named_owner_is_changed_is_a_401(alice_key, alice, bob):
    tampered = alice_key.replace(f"inc_{alice.id}.", f"inc_{bob.id}.", 1)
    r = with_key(tampered).post(counter_url("default", "/next"))
    assert r.status_code == 401
    assert r.json() == REVOKED
    assert redis_value(bob, "default") == 0
    assert redis_value(alice, "default") == 0


@pytest.mark.parametrize(
    "method, path, body, valid_status",
    [
        ("put", "/api/counters/default", {"value": "abc"}, 400),
        ("put", "/api/counters/default", {"value": 2**63}, 400),
        ("post", "/api/counters/nope/next", None, 404),
        ("get", "/api/counters/nope", None, 404),
        ("delete", "/api/counters/default/next", None, 405),
        ("put", "/v1/current", {"current": "5abc"}, 400),
    ],
)
def test_a_forged_key_gets_a_401_before_any_other_error(alice, alice_key, method, path, body, valid_status):
    # Any other answer to a key that is not valid would tell its sender something.
    r = call(with_key(forged(alice)), method, path, body)
    assert r.status_code == 401
    assert r.json() == (V1_REVOKED if path.startswith("/v1") else REVOKED)
    # The same request with a real key gets the error it deserves.
    assert call(with_key(alice_key), method, path, body).status_code == valid_status
    assert redis_value(alice, "default") == 0


def test_a_forged_key_gets_a_401_from_the_browsable_api_too(alice):
    r = with_key(forged(alice)).get(counter_url("default"), HTTP_ACCEPT="text/html")
    assert r.status_code == 401
    assert "Invalid or revoked API key." in r.content.decode()


def test_a_key_entry_redis_forgot_is_checked_in_sql_and_put_back(
    alice_key, alice, redis_conn, redis_round_trips, django_assert_num_queries
):
    client = with_key(alice_key)
    assert client.post(counter_url("default", "/next")).json()["value"] == 1
    entry = keystore.key(ApiKey.objects.get().hashed, alice.id)
    assert redis_conn.delete(entry) == 1
    redis_round_trips.clear()
    assert client.post(counter_url("default", "/next")).json()["value"] == 2
    # refused by the counter's script, looked up (missing), put back from SQL (one script: DEL
    # and HSET), then the counter
    assert redis_round_trips == ["evalsha", "evalsha", "evalsha", "evalsha"]
    assert redis_conn.exists(entry) == 1
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert client.post(counter_url("default", "/next")).json()["value"] == 3
    assert redis_round_trips == ["evalsha"]


def test_a_keys_use_is_recorded_in_sql_at_most_once_a_minute(alice_key, alice, redis_conn, django_assert_num_queries):
    client = with_key(alice_key)
    client.post(counter_url("default", "/next"))
    row = ApiKey.objects.get()
    ApiKey.objects.update(last_used_at=None)
    with django_assert_num_queries(0):  # used a moment ago: Redis knows, SQL is not written
        assert client.post(counter_url("default", "/next")).status_code == 200
    assert ApiKey.objects.get().last_used_at is None
    entry = keystore.key(row.hashed, alice.id)
    redis_conn.hset(entry, "t", int(time.time()) - KEY_TOUCH_SECONDS)
    with django_assert_num_queries(1):  # a minute ago: recorded, in one UPDATE
        assert client.post(counter_url("default", "/next")).status_code == 200
    assert ApiKey.objects.get().last_used_at is not None
    assert int(redis_conn.hget(entry, "t")) >= time.time() - 5


def test_a_key_issued_before_keys_named_their_owner_still_works(alice, redis_conn, redis_round_trips):
    secret = "inc_" + secrets.token_urlsafe(32)  # the old shape: no owner, no dot
    ApiKey.objects.create(user=alice, name="old", prefix=secret[:12], hashed=api_key_hash(secret))
    client = with_key(secret)
    assert client.post(counter_url("default", "/next")).json()["value"] == 1
    redis_round_trips.clear()
    assert client.post(counter_url("default", "/next")).json()["value"] == 2
    assert redis_round_trips == ["evalsha", "evalsha"]  # its own lookup, then the counter
    assert redis_conn.exists(keystore.key(api_key_hash(secret), None)) == 1
    ApiKey.objects.get(name="old").delete()
    assert client.post(counter_url("default", "/next")).json() == REVOKED
    assert redis_conn.exists(keystore.key(api_key_hash(secret), None)) == 0


@pytest.mark.parametrize(
    "secret, owner",
    [
        ("inc_42.abc", 42),
        ("inc_0.abc", 0),
        ("inc_42", None),
        ("inc_abc", None),
        ("inc_.abc", None),
        ("inc_-1.abc", None),
        ("inc_4 2.abc", None),
        ("inc_\u0664\u0662.abc", None),  # Arabic-Indic digits: isdigit() says yes, we say no
        ("inc_" + "9" * 19 + ".abc", int("9" * 19)),
        ("inc_" + "9" * 20 + ".abc", None),
    ],
)
def test_the_owner_a_key_names(secret, owner):
    assert api_key_owner(secret) == owner


@pytest.mark.parametrize("path", ["/v1/next", "/v1/current", "/v1/set", "/api/counters/default"])
def test_options_with_a_forged_key_is_a_401(alice, path):
    # OPTIONS makes no counter call, so nothing would check the key there but authentication.
    r = with_key(forged(alice)).options(path)
    assert r.status_code == 401
    assert r.json() == (V1_REVOKED if path.startswith("/v1") else REVOKED)
