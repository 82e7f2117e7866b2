"""COUNTER_RATE_LIMIT: off by default; when on, counted inside the counter's own Redis call."""

import pytest
from rest_framework.test import APIClient

from incrementific.redis import keys
from tests.conftest import bearer
from tests.helpers import counter_url, redis_value


@pytest.fixture
def rate(settings):
    settings.COUNTER_RATE_LIMIT = "3/hour"  # an hour: no window boundary inside a test


def assert_throttled(r):
    assert r.status_code == 429
    assert r.json()["code"] == "throttled"
    assert 1 <= int(r["Retry-After"]) <= 3600


def test_it_is_off_by_default(alice_client, alice, redis_conn):
    for _ in range(20):
        assert alice_client.post(counter_url("default", "/next")).status_code == 200
    assert redis_conn.keys("*~rate*") == []


def test_next_set_read_and_list_all_count_and_the_fourth_is_refused(alice_client, alice, rate):
    assert alice_client.post(counter_url("default", "/next")).json()["value"] == 1
    assert alice_client.put(counter_url("default"), {"value": 5}, format="json").status_code == 200
    assert alice_client.get(counter_url("default")).status_code == 200
    for r in [
        alice_client.post(counter_url("default", "/next")),
        alice_client.put(counter_url("default"), {"value": 9}, format="json"),
        alice_client.get(counter_url("default")),
        alice_client.get("/api/counters"),
    ]:
        assert_throttled(r)
    assert redis_value(alice, "default") == 5  # the refused next and set changed nothing


def test_each_user_has_a_rate_of_their_own(alice_client, alice, bob, rate):
    for _ in range(3):
        alice_client.post(counter_url("default", "/next"))
    assert_throttled(alice_client.post(counter_url("default", "/next")))
    bobs = APIClient()
    bobs.credentials(HTTP_AUTHORIZATION=bearer(bob))
    assert bobs.post(counter_url("default", "/next")).status_code == 200


def test_v1_counts_too_and_answers_in_its_shape(alice_client, alice, rate):
    for _ in range(3):
        alice_client.get("/v1/next")
    r = alice_client.get("/v1/next")
    assert r.status_code == 429
    assert list(r.json()) == ["message"]


def test_it_costs_no_extra_round_trip(alice_client, alice, settings, redis_round_trips, django_assert_num_queries):
    settings.COUNTER_RATE_LIMIT = "4/hour"
    alice_client.post(counter_url("default", "/next"))  # loads the scripts
    alice_client.get(counter_url("default"))
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert alice_client.post(counter_url("default", "/next")).status_code == 200
        assert alice_client.get(counter_url("default")).status_code == 200
    assert redis_round_trips == ["evalsha", "evalsha"]  # each counts inside its own script
    assert_throttled(alice_client.get(counter_url("default")))  # the fifth: so all four counted


def test_a_retry_inside_one_request_counts_once(alice, rate, redis_conn):
    # A forgotten counter takes a restore and a reservation: three store calls, one request.
    from counters import services

    redis_conn.flushdb()
    assert services.counter_next(owner_id=alice.id, name="default").value == 4
    [window] = redis_conn.keys("*~rate*")
    assert redis_conn.get(window) == b"1"
    assert 0 < redis_conn.ttl(window) <= 3601


def test_rate_windows_live_beside_the_counters(alice):
    assert keys.rate(alice.id, 7) == f"ctr:{{u{alice.id}}}:~rate:7"
