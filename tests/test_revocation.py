"""Access tokens refused at once when their user is deactivated, deleted or changes password:
a per-user mark in Redis, checked inside the counter's own call (no extra round trip, no SQL)
and, on the other endpoints, by one Redis read."""

import pytest
from rest_framework.test import APIClient

from accounts import store
from accounts.services import api_key_create
from incrementific.redis import keys
from tests.conftest import bearer
from tests.helpers import redis_value

REVOKED = {"detail": "Token has been revoked.", "code": "token_revoked"}
PASSWORD = "a-long-enough-passphrase"

EVERYWHERE = [
    ("post", "/api/counters/default/next", None),
    ("get", "/api/counters/default", None),
    ("put", "/api/counters/default", {"value": 9}),
    ("get", "/api/counters", None),
    ("post", "/api/counters", {"name": "new"}),
    ("delete", "/api/counters/default", None),
    ("get", "/api/auth/me", None),
    ("get", "/api/keys", None),
]


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


@pytest.fixture
def deactivated_client(alice):
    client = client_for(alice)
    assert client.post("/api/counters/default/next").status_code == 200  # the token worked
    alice.is_active = False
    alice.save()
    return client


@pytest.mark.parametrize("method, path, body", EVERYWHERE)
def test_a_deactivated_users_access_token_is_refused_at_once(deactivated_client, alice, method, path, body):
    r = getattr(deactivated_client, method)(path, body, format="json")
    assert r.status_code == 401
    assert r.json() == REVOKED
    assert redis_value(alice, "default") == 1


@pytest.mark.parametrize("path", ["/v1/next", "/v1/current"])
def test_v1_refuses_it_too(deactivated_client, alice, path):
    r = deactivated_client.get(path)
    assert r.status_code == 401
    assert r.json() == {"message": "Token has been revoked."}


def test_a_password_change_refuses_older_access_tokens_and_not_new_ones(alice, api_client):
    old = client_for(alice)
    r = old.post(
        "/api/auth/password", {"old_password": PASSWORD, "new_password": "brand-new-passphrase"}, format="json"
    )
    assert r.status_code == 204
    assert old.post("/api/counters/default/next").json() == REVOKED
    tokens = api_client.post(
        "/api/auth/token", {"username": "alice", "password": "brand-new-passphrase"}, format="json"
    ).json()
    new = APIClient()
    new.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert new.post("/api/counters/default/next").status_code == 200


def test_a_deleted_users_access_token_is_refused(alice):
    client = client_for(alice)
    alice.delete()
    assert client.post("/api/counters/default/next").json() == REVOKED


def test_api_keys_are_not_access_tokens(alice, bob):
    # Revoking alice's tokens leaves bob alone, and a key is checked by its own lookup.
    secret = api_key_create(user_id=bob.id, name="k")[1]
    store.revoke_tokens(alice.id, lifetime=300)
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert keyed.post("/api/counters/default/next").status_code == 200
    assert client_for(bob).post("/api/counters/default/next").status_code == 200


def test_the_mark_expires_with_the_tokens_it_refuses(alice, redis_conn, settings):
    alice.is_active = False
    alice.save()
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    assert lifetime < redis_conn.ttl(keys.revocation(alice.id)) <= lifetime + 60


def test_checking_costs_no_round_trip(alice, redis_round_trips, django_assert_num_queries):
    client = client_for(alice)
    client.post("/api/counters/default/next")  # loads the script
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert client.post("/api/counters/default/next").status_code == 200
    assert redis_round_trips == ["evalsha"]


def test_the_mark_is_kept_in_sql_too_and_tokens_issued_later_carry_it(alice, redis_conn):
    """Redis's mark is a copy: a flush takes it, SQL keeps it, and a new token carries SQL's."""
    from accounts.models import TokenRevocation
    from accounts.services import user_change_password
    from accounts.tokens import RefreshToken

    user_change_password(user=alice, new_password="another-long-enough-passphrase")
    [row] = TokenRevocation.objects.filter(user_id=alice.id)
    assert redis_conn.hget(keys.revocation(alice.id), "m") == str(row.mark).encode()
    redis_conn.flushdb()
    assert RefreshToken.for_user(alice).access_token["rev"] == row.mark
    assert client_for(alice).post("/api/counters/default/next").status_code == 200
