import pytest

from counters import services
from tests.helpers import NO_CREDENTIALS


def test_it_lists_my_counters_by_name_with_values(alice_client, alice, bob):
    for name, value in [("zeta", 5), ("alpha", 2)]:
        services.counter_create(owner_id=alice.id, name=name, value=value)
    services.counter_create(owner_id=bob.id, name="bobs", value=9)
    r = alice_client.get("/api/counters")
    assert r.status_code == 200
    body = r.json()
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert [(c["name"], c["value"]) for c in body["results"]] == [("alpha", 2), ("default", 0), ("zeta", 5)]
    assert body["results"][0]["url"] == "http://testserver/api/counters/alpha"


def test_it_paginates(alice_client, alice):
    for n in range(60):
        services.counter_create(owner_id=alice.id, name=f"c{n:02}", value=n)
    first = alice_client.get("/api/counters").json()
    assert first["count"] == 61
    assert len(first["results"]) == 50
    assert first["next"] == "http://testserver/api/counters?page=2"
    second = alice_client.get("/api/counters?page=2").json()
    assert [c["name"] for c in second["results"]] == [f"c{n}" for n in range(50, 60)] + ["default"]
    assert second["results"][0]["value"] == 50


def test_it_reads_a_page_of_values_in_one_redis_round_trip(alice_client, alice, monkeypatch):
    for n in range(20):
        services.counter_create(owner_id=alice.id, name=f"c{n:02}")
    from counters import store

    calls = []
    real = store.get_many
    monkeypatch.setattr(store, "get_many", lambda pairs, **kw: calls.append(len(pairs)) or real(pairs, **kw))
    monkeypatch.setattr(store, "get", lambda *a, **kw: calls.append("get"))
    assert alice_client.get("/api/counters").status_code == 200  # fenced, it puts back her mark first
    calls.clear()
    assert alice_client.get("/api/counters").status_code == 200
    assert calls == [21]


def test_no_credentials_is_a_401(api_client, db):
    r = api_client.get("/api/counters")
    assert r.status_code == 401
    assert r.json() == NO_CREDENTIALS


@pytest.mark.parametrize("page", ["9", "0", "x", "", "last", "1.0"])
def test_a_bad_page_is_a_404(alice_client, page):
    """Found by schemathesis: DRF reads an empty page as the first and `last` as the last, where
    the schema declares a whole number from 1."""
    r = alice_client.get(f"/api/counters?page={page}")
    assert r.status_code == 404
    assert r.json() == {"detail": "Invalid page.", "code": "not_found"}


def test_a_page_number_given_twice_is_a_400_and_changes_nothing(alice_client):
    r = alice_client.get("/api/counters?page=1&page=1")
    assert (r.status_code, r.json()) == (
        400,
        {"detail": "Invalid input.", "code": "invalid", "fields": {"page": ["Give one page number."]}},
    )
    assert alice_client.get("/api/counters?page=1").json()["count"] == 1
