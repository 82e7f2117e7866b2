"""API keys limited to some counters and some actions, and keys that expire (accounts/scopes.py).

Every action against a counter in scope and out of it, for each kind of scope, on the paths that
check a key inside the counter's own Redis call (read, next, set) and on those that check it in
Python (list, create, delete, and a key whose Redis entry is gone)."""

import datetime
import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keystore
from accounts.models import ApiKey
from counters import services
from tests.helpers import counter_url, redis_value
from tests.test_keys import REVOKED, with_key


@pytest.fixture
def make_key(alice_client):
    def make(**scope) -> tuple[str, dict]:
        r = alice_client.post("/api/keys", {"name": "build server", **scope}, format="json")
        assert r.status_code == 201, r.json()
        body = r.json()
        return body.pop("key"), body

    return make


@pytest.fixture
def counters(alice):
    services.counter_create(owner_id=alice.id, name="builds", value=10)
    services.counter_create(owner_id=alice.id, name="invoices", value=100)


def denied(action: str, name: str | None) -> dict:
    what = "counters" if name is None else f"the counter {name}"
    return {"detail": f"This API key may not {action} {what}.", "code": "api_key_scope"}


def attempt(client: APIClient, action: str, name: str):
    """One action on one counter, the way the API is called for it: (status, body)."""
    if action == "read":
        r = client.get(counter_url(name))
    elif action == "next":
        r = client.post(counter_url(name, "/next"))
    elif action == "set":
        r = client.put(counter_url(name), {"value": 500}, format="json")
    elif action == "create":
        r = client.post("/api/counters", {"name": name, "value": 7}, format="json")
    else:
        r = client.delete(counter_url(name))
    return r.status_code, (r.json() if r.content else None)


VERBS = {"read": "read", "next": "take the next value of", "set": "set", "create": "create", "delete": "delete"}
# What each action leaves behind on "builds" (at 10) when allowed; "fresh" is created new.
ALLOWED = {"read": 10, "next": 11, "set": 500, "delete": None}


@pytest.mark.parametrize("action", ["read", "next", "set", "delete"])
def test_a_key_for_one_counter_does_everything_there_and_nothing_elsewhere(make_key, counters, alice, action):
    key, _ = make_key(counters=["builds"])
    client = with_key(key)
    for _ in range(2):  # checked in SQL the first time, then from its Redis entry by the counter's script
        assert attempt(client, action, "invoices") == (403, denied(VERBS[action], "invoices"))
    assert redis_value(alice, "invoices") == 100  # nothing changed
    status, _ = attempt(client, action, "builds")
    assert status == (204 if action == "delete" else 200)
    assert redis_value(alice, "builds") == ALLOWED[action]


@pytest.mark.parametrize("action", ["read", "next", "set", "create", "delete"])
def test_a_key_for_one_action_does_that_and_nothing_else(make_key, counters, alice, action):
    key, _ = make_key(actions=[action])
    client = with_key(key)
    for other in [*VERBS, *VERBS]:  # the second time round, from the key's Redis entry
        if other == action:
            continue
        name = "fresh" if other == "create" else "builds"
        assert attempt(client, other, name) == (403, denied(VERBS[other], name)), other
    assert redis_value(alice, "builds") == 10
    assert redis_value(alice, "fresh") is None
    status, _ = attempt(client, action, "fresh" if action == "create" else "builds")
    assert status == {"create": 201, "delete": 204}.get(action, 200)


def test_create_is_allowed_only_for_names_in_the_list(make_key, alice):
    key, _ = make_key(counters=["releases"], actions=["create", "next"])
    client = with_key(key)
    assert attempt(client, "create", "other") == (403, denied("create", "other"))
    assert redis_value(alice, "other") is None
    assert attempt(client, "create", "releases")[0] == 201
    assert client.post(counter_url("releases", "/next")).json()["value"] == 8


def test_a_scoped_keys_list_shows_only_its_counters(make_key, counters):
    key, _ = make_key(counters=["builds", "missing"])
    r = with_key(key).get("/api/counters")
    assert r.status_code == 200
    assert [(c["name"], c["value"]) for c in r.json()["results"]] == [("builds", 10)]
    assert r.json()["count"] == 1
    key, _ = make_key(actions=["next"])
    assert with_key(key).get("/api/counters").json() == denied("read", None)


def test_a_next_only_key_takes_one_round_trip_and_no_sql(
    make_key, counters, redis_round_trips, django_assert_num_queries
):
    key, _ = make_key(counters=["builds"], actions=["next"])
    client = with_key(key)
    assert client.post(counter_url("builds", "/next")).json()["value"] == 11  # first use: SQL, then cached
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert client.post(counter_url("builds", "/next")).json()["value"] == 12
        assert client.post(counter_url("invoices", "/next")).json() == denied("take the next value of", "invoices")
        assert client.get(counter_url("builds")).json() == denied("read", "builds")
    assert redis_round_trips == ["evalsha", "evalsha", "evalsha"]


def test_the_key_list_shows_each_keys_scope(make_key, alice_client):
    expires = (timezone.now() + datetime.timedelta(days=30)).replace(microsecond=0)
    _, scoped = make_key(counters=["b", "a"], actions=["next", "read"], expires_at=expires.isoformat())
    assert (scoped["counters"], scoped["actions"], scoped["expires_at"]) == (
        ["a", "b"],
        ["read", "next"],
        expires.isoformat().replace("+00:00", "Z"),
    )
    _, plain = make_key()
    assert (plain["counters"], plain["actions"], plain["expires_at"]) == (None, None, None)
    listed = {k["id"]: k for k in alice_client.get("/api/keys").json()}
    assert listed[scoped["id"]] == {**scoped, "last_used_at": None}
    assert list(listed[scoped["id"]]) == [
        "id", "name", "prefix", "counters", "actions", "expires_at", "created_at", "last_used_at",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "scope, field, message",
    [
        ({"actions": ["next", "reset"]}, "actions", ['item 2: "reset" is not a valid choice.']),
        ({"actions": []}, "actions", ["This list may not be empty."]),
        ({"counters": []}, "counters", ["This list may not be empty."]),
        (
            {"counters": ["a b"]},
            "counters",
            ["item 1: Use 1 to 64 characters: letters, digits, '_', '.' or '-', and not '.' or '..' alone."],
        ),
        ({"counters": "builds"}, "counters", ['Expected a list of items but got type "str".']),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", ["Must be in the future."]),
        ({"expires_at": "tomorrow"}, "expires_at", None),
    ],
)
def test_a_bad_scope_is_a_400_and_makes_no_key(alice_client, scope, field, message):
    r = alice_client.post("/api/keys", {"name": "x", **scope}, format="json")
    assert r.status_code == 400
    assert list(r.json()["fields"]) == [field]
    if message is not None:
        assert r.json()["fields"][field] == message
    assert not ApiKey.objects.exists()


def test_an_expired_key_is_refused_like_a_revoked_one_at_its_second(make_key, counters, alice):
    expires = timezone.now() + datetime.timedelta(seconds=2)
    key, _ = make_key(expires_at=expires.isoformat())
    client = with_key(key)
    assert client.post(counter_url("builds", "/next")).json()["value"] == 11  # its entry is now in Redis
    assert client.get("/api/counters").status_code == 200
    time.sleep(max(0.0, (expires - timezone.now()).total_seconds()) + 1.05)
    # The counter's script refuses it from its entry, the list's lookup too, and SQL after them.
    for r in [client.post(counter_url("builds", "/next")), client.get("/api/counters"), client.get("/v1/next")]:
        assert (r.status_code, r.json()) in [(401, REVOKED), (401, {"message": REVOKED["detail"]})]
    assert redis_value(alice, "builds") == 11


def test_a_changed_scope_holds_from_the_next_request(make_key, alice_client, counters, alice):
    key, body = make_key()
    client = with_key(key)
    assert client.post(counter_url("builds", "/next")).json()["value"] == 11  # cached, unscoped
    r = alice_client.patch(f"/api/keys/{body['id']}", {"actions": ["read"]}, format="json")
    assert (r.status_code, r.json()["actions"], r.json()["counters"]) == (200, ["read"], None)
    for _ in range(2):  # SQL's answer, then the entry it put back
        assert client.post(counter_url("builds", "/next")).json() == denied("take the next value of", "builds")
    assert client.get(counter_url("builds")).json()["value"] == 11
    r = alice_client.patch(f"/api/keys/{body['id']}", {"actions": None, "counters": ["invoices"]}, format="json")
    assert (r.json()["actions"], r.json()["counters"]) == (None, ["invoices"])
    assert client.post(counter_url("builds", "/next")).json() == denied("take the next value of", "builds")
    assert client.post(counter_url("invoices", "/next")).json()["value"] == 101
    assert redis_value(alice, "builds") == 11


def test_a_key_entry_redis_forgot_is_held_to_its_scope_from_sql(make_key, counters, alice, redis_conn):
    key, _ = make_key(counters=["builds"])
    client = with_key(key)
    assert client.post(counter_url("builds", "/next")).json()["value"] == 11
    redis_conn.delete(keystore.key(ApiKey.objects.get().hashed, alice.id))
    assert client.post(counter_url("invoices", "/next")).json() == denied("take the next value of", "invoices")
    assert redis_value(alice, "invoices") == 100


def test_a_scoped_key_cannot_make_or_revoke_keys(make_key, alice_client):
    key, body = make_key(actions=["read", "next", "set", "create", "delete"])
    client = with_key(key)
    for r in [client.post("/api/keys", {"name": "more"}, format="json"), client.delete(f"/api/keys/{body['id']}")]:
        assert (r.status_code, r.json()["code"]) == (403, "api_key_not_allowed")
    r = client.patch(f"/api/keys/{body['id']}", {"actions": None}, format="json")
    assert (r.status_code, r.json()["code"]) == (403, "api_key_not_allowed")
    assert ApiKey.objects.get().actions == ["read", "next", "set", "create", "delete"]


def test_the_prototypes_paths_honour_scopes_on_default(make_key, alice):
    key, _ = make_key(actions=["read"])
    client = with_key(key)
    assert client.get("/v1/current").json() == {"message": "Current", "result": 0}
    assert client.get("/v1/next").json() == {
        "message": "This API key may not take the next value of the counter default."
    }
    r = client.put("/v1/set", "current=5", content_type="application/x-www-form-urlencoded")
    assert (r.status_code, r.json()) == (403, {"message": "This API key may not set the counter default."})
    key, _ = make_key(counters=["builds"])
    assert with_key(key).get("/v1/current").status_code == 403
    assert redis_value(alice, "default") == 0
