import pytest
from rest_framework.test import APIClient

from accounts import keystore
from accounts.models import ApiKey
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
    assert set(body) == {"id", "name", "prefix", "key", "created_at", "last_used_at"}
    assert body["name"] == "cron"
    assert body["key"].startswith("inc_")
    assert len(body["key"]) == 47
    assert body["prefix"] == body["key"][:12]
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


def test_the_list_shows_keys_without_secrets(alice_client, alice_key):
    with_key(alice_key).post(counter_url("default", "/next"))
    r = alice_client.get("/api/keys")
    assert r.status_code == 200
    [listed] = r.json()
    assert set(listed) == {"id", "name", "prefix", "created_at", "last_used_at"}
    assert listed["prefix"] == alice_key[:12]
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
    assert redis_conn.exists(keystore.key(ApiKey.objects.get().hashed)) == 1


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
    assert redis_round_trips == ["evalsha", "evalsha"]  # the key, the counter


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
    # The key's lookup and the counter's script each find their script gone and send it once.
    assert redis_round_trips == ["evalsha", "eval", "evalsha", "eval"]
