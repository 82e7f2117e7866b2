import os
import re
import threading
from importlib.resources import files

import pytest
from redis.exceptions import RedisError

from counters import store
from incrementific.redis import connection, keys, ping
from incrementific.redis.replies import Reply
from tests.helpers import MAX, one_read_per_primary


@pytest.fixture
def counter(redis_conn):
    store.create(1, "c", value=0, limit=MAX, created="2026-01-01T00:00:00Z")
    return ("c",)


def test_key_layout():
    assert keys.counter(42, "invoices") == "ctr:{u42}:invoices"


@pytest.mark.single_server  # fenced, the hash also names its primary (tests/test_cluster.py)
def test_state_is_a_hash_without_expiry(redis_conn, counter):
    assert redis_conn.hgetall(keys.counter(1, "c")) == {
        b"v": b"0",
        b"l": str(MAX).encode(),
        b"c": b"2026-01-01T00:00:00Z",
    }
    assert redis_conn.ttl(keys.counter(1, "c")) == -1


def test_next_is_one_round_trip(counter, redis_round_trips):
    store.next_value(1, "c", 1)  # the first call may load the script
    redis_round_trips.clear()
    assert store.next_value(1, "c", 1) == store.State(2, "2026-01-01T00:00:00Z")
    assert redis_round_trips == ["evalsha"]


def test_a_forked_child_talks_to_redis_on_a_connection_of_its_own(counter):
    # gunicorn forks its workers: a connection inherited from the parent is the parent's socket.
    assert store.next_value(1, "c", 1).value == 1
    parent = connection.command("CLIENT", "ID")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, str(connection.command("CLIENT", "ID")).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    with os.fdopen(read) as child:
        assert int(child.read()) != parent
    assert connection.command("CLIENT", "ID") == parent  # the child left the parent's alone
    assert store.next_value(1, "c", 1).value == 2


def test_increments_from_many_threads_are_atomic(counter):
    results = []

    def work():
        for _ in range(200):
            results.append(store.next_value(1, "c", 3).value)

    threads = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == list(range(3, 3 * 1600 + 1, 3))
    assert store.get(1, "c").value == 4800


def test_values_above_2_to_the_53_stay_exact(redis_conn):
    # Lua numbers are doubles: a script that did arithmetic in Lua would round these.
    start = 2**53 + 1
    store.create(1, "big", value=start, limit=MAX, created="x")
    assert [store.next_value(1, "big", 1).value for _ in range(3)] == [start + 1, start + 2, start + 3]
    assert store.next_value(1, "big", 2**62).value == start + 3 + 2**62


def test_overflow_changes_nothing(redis_conn):
    store.create(1, "top", value=MAX - 1, limit=MAX, created="x")
    with pytest.raises(store.ValueOverflow):
        store.next_value(1, "top", 2)
    assert store.get(1, "top").value == MAX - 1
    assert store.next_value(1, "top", 1).value == MAX
    with pytest.raises(store.ValueOverflow):
        store.next_value(1, "top", 1)
    assert store.get(1, "top").value == MAX


@pytest.mark.parametrize("start, limit, step", [(9, 10, 2), (99, 100, 2), (0, 9, 10), (5, 5, 1), (9, 99, 91)])
def test_the_limit_is_never_passed(start, limit, step):
    # Comparisons are on decimal strings: lengths first (9 < 10 though "9" > "10").
    store.create(1, "l", value=start, limit=limit, created="x")
    with pytest.raises(store.LimitReached) as info:
        store.next_value(1, "l", step)
    assert info.value.needed == start + step
    assert store.get(1, "l").value == start


@pytest.mark.parametrize("start, limit, step", [(9, 10, 1), (99, 100, 1), (0, 10, 10), (9, 99, 90)])
def test_up_to_the_limit_is_allowed(start, limit, step):
    store.create(1, "l", value=start, limit=limit, created="x")
    assert store.next_value(1, "l", step).value == start + step


def test_a_new_limit_is_installed_in_the_same_call(redis_conn):
    store.create(1, "l", value=5, limit=5, created="x")
    assert store.next_value(1, "l", 1, raise_to=8).value == 6
    assert redis_conn.hget(keys.counter(1, "l"), "l") == b"8"
    store.next_value(1, "l", 1, raise_to=7)  # a late, lower limit never lowers it
    assert redis_conn.hget(keys.counter(1, "l"), "l") == b"8"


def test_set_stays_within_the_limit(redis_conn):
    store.create(1, "s", value=5, limit=10, created="x")
    assert store.set_value(1, "s", 0).value == 0
    assert store.set_value(1, "s", 10).value == 10
    with pytest.raises(store.LimitReached):
        store.set_value(1, "s", 11)
    assert store.get(1, "s").value == 10
    assert store.set_value(1, "s", 11, raise_to=20).value == 11


def test_a_missing_counter_is_never_read_as_zero():
    for call in [
        lambda: store.get(1, "gone"),
        lambda: store.next_value(1, "gone", 1),
        lambda: store.set_value(1, "gone", 1),
    ]:
        with pytest.raises(store.StateMissing):
            call()


def test_next_does_not_recreate_a_missing_counter(redis_conn):
    with pytest.raises(store.StateMissing):
        store.next_value(1, "gone", 1)
    assert redis_conn.exists(keys.counter(1, "gone")) == 0


@pytest.mark.single_server
def test_restore_only_fills_a_hole(redis_conn):
    assert store.restore(1, "r", value=30, created="x", primary="") == (True, "")
    assert store.get(1, "r").value == 30
    store.set_value(1, "r", 4)
    assert store.restore(1, "r", value=99, created="x", primary="") == (False, "")
    assert store.get(1, "r").value == 4


@pytest.mark.single_server
def test_a_restore_for_a_reservation_another_primary_held_takes_over_and_never_lowers(redis_conn):
    """The row names another primary: the state here is restored even though it exists, at the
    row's reservation, or at its own value if that is higher (it never goes down)."""
    store.create(1, "r", value=5, limit=40, created="x")
    assert store.restore(1, "r", value=30, created="x", primary="elsewhere") == (True, "")
    assert redis_conn.hgetall(keys.counter(1, "r")) == {b"v": b"30", b"l": b"30", b"c": b"x"}
    store.create(1, "r", value=50, limit=60, created="x")
    assert store.restore(1, "r", value=30, created="x", primary="elsewhere") == (True, "")
    assert redis_conn.hgetall(keys.counter(1, "r")) == {b"v": b"50", b"l": b"50", b"c": b"x"}


def test_get_many_reads_everything_in_one_round_trip(redis_round_trips):
    store.create(1, "a", value=1, limit=9, created="x")
    store.create(2, "b", value=2, limit=9, created="y")
    redis_round_trips.clear()
    assert store.get_many([(1, "a", None), (1, "none", None), (2, "b", None)]) == [
        store.State(1, "x"),
        None,
        store.State(2, "y"),
    ]
    keys_ = [keys.counter(1, "a"), keys.counter(2, "b")]
    assert redis_round_trips == one_read_per_primary(*keys_)


def test_a_read_of_many_owners_costs_a_round_trip_per_primary_not_per_counter(redis_round_trips):
    owners = range(1, 61)  # on a Cluster, owners in every shard
    for owner in owners:
        store.create(owner, "a", value=owner, limit=MAX, created="x")
    redis_round_trips.clear()
    assert store.get_many([(owner, "a", None) for owner in owners]) == [store.State(owner, "x") for owner in owners]
    assert redis_round_trips == one_read_per_primary(*(keys.counter(owner, "a") for owner in owners))
    assert len(redis_round_trips) == (3 if connection.topology() == "cluster" else 1)


def test_scripts_reload_after_redis_forgets_them(redis_conn, counter):
    redis_conn.script_flush()
    assert store.next_value(1, "c", 1).value == 1


def test_a_dead_server_is_one_domain_exception(private_redis):
    private_redis.stop()
    for call in [lambda: store.get(1, "c"), lambda: store.next_value(1, "c", 1), lambda: ping()]:
        with pytest.raises(store.CounterStoreUnavailable) as info:
            call()
        assert isinstance(info.value.__cause__, RedisError)


def test_every_reply_code_of_the_scripts_is_named_once_for_python():
    # replies.Reply mirrors the numbers the Lua files return; a code added to a script without
    # its name here (or a name no script returns) fails.
    lua = files("incrementific.redis").joinpath("lua")
    returned = set()
    for script in lua.iterdir():
        text = script.read_text()
        returned |= {int(code) for code in re.findall(r"return \{(\d+)", text)}
        returned |= {int(code) for code in re.findall(r"return (\d+) end", text)}  # gate.lua's refusals
    assert returned == {reply.value for reply in Reply}
