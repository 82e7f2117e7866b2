"""The service against what the OWASP API Security Top 10 (2023) warns of. Tokens (forged,
expired, other issuer or audience, alg none) are in test_token.py; brute force in
test_throttling.py; revoked keys in test_keys.py."""

import json

import pytest
from django.contrib.auth.hashers import get_hasher
from django.db import connection

from counters import services
from counters.models import Counter
from tests.helpers import NOT_FOUND, redis_value


@pytest.fixture
def bobs_counter(bob):
    services.counter_create(owner_id=bob.id, name="payroll", value=41)
    return "payroll"


@pytest.mark.parametrize(
    "method, suffix, body",
    [
        ("get", "", None),
        ("put", "", {"value": 0}),
        ("patch", "", {"value": 0}),
        ("delete", "", None),
        ("post", "/next", None),
    ],
)
def test_another_users_counter_is_a_404_for_every_verb(alice_client, bob, bobs_counter, method, suffix, body):
    """API1, broken object level authorization: the key is derived from the caller's own id."""
    r = getattr(alice_client, method)(f"/api/counters/{bobs_counter}{suffix}", body, format="json")
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert redis_value(bob, bobs_counter) == 41
    assert Counter.objects.filter(owner=bob, name=bobs_counter).exists()


def test_v1_only_ever_touches_the_callers_own_default(alice_client, alice, bob):
    alice_client.get("/v1/next")
    alice_client.put("/v1/set", {"current": 99}, format="json")
    assert (redis_value(alice, "default"), redis_value(bob, "default")) == (99, 0)


def test_mass_assignment_is_ignored(alice_client, alice, bob):
    """API3: fields that are not input (owner, reserved_through) cannot be set."""
    body = {"name": "mine", "value": 1, "owner": bob.id, "owner_id": bob.id, "reserved_through": 2**63 - 1}
    r = alice_client.post("/api/counters", body, format="json")
    assert r.status_code == 201
    row = Counter.objects.get(name="mine")
    assert row.owner == alice
    assert row.reserved_through == 1 + 3


@pytest.mark.parametrize(
    "name", ["x' OR '1'='1", "x; DROP TABLE counters_counter;--", "../../etc/passwd", "%00", "{u1}:default", "*"]
)
def test_injection_in_a_name_is_a_400_and_touches_nothing(alice_client, alice, name):
    r = alice_client.post("/api/counters", {"name": name}, format="json")
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["name"]
    assert Counter.objects.count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM counters_counter")
        assert cursor.fetchone() == (1,)


@pytest.mark.parametrize(
    "path",
    [
        "/api/counters/x'%20OR%20'1'='1",
        "/api/counters/..%2F..%2Fadmin",
        "/api/counters/%7Bu1%7D:default/next",
        "/api/counters/*",
    ],
)
def test_injection_in_a_path_is_a_json_404(alice_client, path):
    r = alice_client.get(path)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


HOSTILE_BODIES = [
    "[" * 50_000,
    '{"a":' * 5_000 + "1" + "}" * 5_000,
    "\x00\xff\xfe garbage",
    '{"username": {"$ne": null}, "password": {"$ne": null}}',
    json.dumps({"username": "a" * 60_000, "password": "b"}),
    "null",
    "42",
]


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/token", "/api/auth/token/refresh", "/v1/register"])
@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_hostile_bodies_get_a_json_4xx_never_a_500(api_client, db, path, body):
    """API4 and API8: huge, deeply nested, malformed and operator-injection bodies."""
    r = api_client.post(path, body, content_type="application/json")
    assert 400 <= r.status_code < 500, r.content[:200]
    assert r["Content-Type"].startswith("application/json")
    assert r.json()


def test_an_unknown_user_costs_a_login_the_same_hashing_as_a_wrong_password(api_client, alice, monkeypatch):
    """No shortcut for unknown usernames that a stopwatch could tell from a wrong password:
    both run the password hasher exactly once."""
    hasher = get_hasher()
    calls = []
    real = type(hasher).encode
    monkeypatch.setattr(type(hasher), "encode", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    for username in ["alice", "nobody-by-that-name"]:
        calls.clear()
        r = api_client.post("/api/auth/token", {"username": username, "password": "wrong-guess"}, format="json")
        assert r.status_code == 401
        assert len(calls) == 1, username
