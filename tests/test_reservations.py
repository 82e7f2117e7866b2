"""The durable half of a counter: reserved_through in SQL (the tests' block is 3)."""

import logging

import pytest

from counters import services
from counters.models import Counter
from incrementific.redis import keys
from tests.helpers import MAX, counter_url


def reserved(user, name="default") -> int:
    return Counter.objects.get(owner=user, name=name).reserved_through


def next_value(user, name="default", step=1) -> int:
    return services.counter_next(owner_id=user.id, name=name, step=step).value


def test_a_new_counter_has_one_block_reserved(alice):
    assert reserved(alice) == 3
    services.counter_create(owner_id=alice.id, name="high", value=100)
    assert reserved(alice, "high") == 103
    services.counter_create(owner_id=alice.id, name="top", value=MAX - 1)
    assert reserved(alice, "top") == MAX


def test_the_steady_path_is_one_redis_round_trip_and_no_sql(alice, django_assert_num_queries, redis_round_trips):
    next_value(alice)  # loads the script
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert next_value(alice) == 2
    assert redis_round_trips == ["evalsha"]


def test_steady_api_requests_run_no_sql(alice_client, alice, django_assert_num_queries, redis_round_trips):
    alice_client.post(counter_url("default", "/next"))  # each script loads once
    alice_client.get(counter_url("default"))
    alice_client.put(counter_url("default"), {"value": 1}, format="json")
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert alice_client.post(counter_url("default", "/next")).json()["value"] == 2
        assert alice_client.get(counter_url("default")).json()["value"] == 2
        assert alice_client.put(counter_url("default"), {"value": 1}, format="json").json()["value"] == 1
    assert redis_round_trips == ["evalsha", "evalsha", "evalsha"]  # a script each, the token checked inside


def test_passing_the_block_takes_one_sql_write_and_reserves_the_next(alice, django_assert_num_queries):
    assert [next_value(alice) for _ in range(3)] == [1, 2, 3]
    assert reserved(alice) == 3
    with django_assert_num_queries(4):  # savepoint, SELECT ... FOR UPDATE, UPDATE, release
        assert next_value(alice) == 4
    assert reserved(alice) == 7
    assert [next_value(alice) for _ in range(3)] == [5, 6, 7]
    assert reserved(alice) == 7


def test_a_large_step_reserves_past_itself(alice):
    assert next_value(alice, step=1000) == 1000
    assert reserved(alice) == 1003


def test_a_set_within_the_reservation_is_sql_free(alice, django_assert_num_queries):
    with django_assert_num_queries(0):
        services.counter_set(owner_id=alice.id, name="default", value=2)
    assert reserved(alice) == 3


def test_a_set_above_the_reservation_reserves_first(alice):
    services.counter_set(owner_id=alice.id, name="default", value=500)
    assert reserved(alice) == 503
    assert next_value(alice) == 501


def test_the_reservation_only_rises(alice):
    services.counter_set(owner_id=alice.id, name="default", value=500)
    services.counter_set(owner_id=alice.id, name="default", value=0)
    assert reserved(alice) == 503
    assert [next_value(alice) for _ in range(4)] == [1, 2, 3, 4]
    assert reserved(alice) == 503


def test_a_forgotten_counter_resumes_above_every_value_handed_out(alice, redis_conn, caplog):
    handed_out = [next_value(alice) for _ in range(5)]
    assert reserved(alice) == 7
    redis_conn.delete(keys.counter(alice.id, "default"))
    with caplog.at_level(logging.WARNING, logger="counters.services"):
        after = next_value(alice)
    assert after == 8
    assert after > max(handed_out)
    assert caplog.messages == [
        f"counter restored: owner={alice.id} name=default; Redis had lost it, it resumes above "
        "reserved_through=7, skipping at most one block (3) of values, repeating none"
    ]


def test_a_forgotten_counter_reads_at_its_reservation(alice, alice_client, redis_conn):
    next_value(alice)
    redis_conn.flushdb()
    r = alice_client.get(counter_url("default"))
    assert r.status_code == 200
    assert r.json()["value"] == 3
    assert r.json()["created_at"] == services.rendered(Counter.objects.get(owner=alice).created_at)


def test_a_forgotten_counter_listed_is_restored(alice, alice_client, redis_conn):
    services.counter_create(owner_id=alice.id, name="other", value=10)
    redis_conn.delete(keys.counter(alice.id, "other"))
    values = {c["name"]: c["value"] for c in alice_client.get("/api/counters").json()["results"]}
    assert values == {"default": 0, "other": 13}


def test_a_counter_set_far_down_and_then_lost_resumes_above_its_old_high(alice, redis_conn):
    """The documented price of a reservation that only rises: a skip, never a repeat."""
    services.counter_set(owner_id=alice.id, name="default", value=1000)
    services.counter_set(owner_id=alice.id, name="default", value=0)
    redis_conn.flushdb()
    assert next_value(alice) == 1004


def test_a_missing_counter_that_never_existed_is_not_created(alice, redis_conn):
    with pytest.raises(services.CounterNotFound):
        next_value(alice, "ghost")
    assert redis_conn.exists(keys.counter(alice.id, "ghost")) == 0
    assert not Counter.objects.filter(name="ghost").exists()
