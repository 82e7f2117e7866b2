"""Sets and reservations racing each other, driven through the interleavings that matter."""

import threading

import pytest
from django.db import connection

from counters import services
from counters.models import Counter
from incrementific.redis import keys

pytestmark = pytest.mark.django_db(transaction=True)


def reserved(user) -> int:
    return Counter.objects.get(owner=user, name="default").reserved_through


def next_value(user) -> int:
    return services.counter_next(owner_id=user.id, name="default").value


def set_value(user, value) -> int:
    return services.counter_set(owner_id=user.id, name="default", value=value).value


class Paused:
    """Makes the next call to services._reserve stop after its SQL commit, before the caller
    installs the new limit in Redis, until released."""

    def __init__(self, monkeypatch):
        self.committed = threading.Event()
        self.release = threading.Event()
        real = services._reserve

        def reserve(**kwargs):
            result = real(**kwargs)
            if not self.committed.is_set():
                self.committed.set()
                assert self.release.wait(10)
            return result

        monkeypatch.setattr(services, "_reserve", reserve)


def in_thread(fn, *args):
    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_set_lands_between_a_reservation_and_its_install(make_user, monkeypatch, redis_conn):
    user = make_user()
    handed_out = [next_value(user) for _ in range(3)]  # 1, 2, 3: the first block is used up
    paused = Paused(monkeypatch)
    thread, out = in_thread(next_value, user)
    assert paused.committed.wait(10)
    assert reserved(user) == 7  # committed for needed=4
    assert set_value(user, 1) == 1  # within the old limit: no SQL, no wait
    paused.release.set()
    thread.join()
    handed_out.append(out["value"])
    assert out["value"] == 2  # after the set: its value plus one
    handed_out += [next_value(user) for _ in range(10)]
    assert max(handed_out) <= reserved(user)
    redis_conn.flushdb()  # and if Redis forgets now, it resumes above all of it
    assert next_value(user) > max(handed_out)


def test_a_set_above_the_limit_races_a_reservation(make_user, monkeypatch, redis_conn):
    user = make_user()
    [next_value(user) for _ in range(3)]
    paused = Paused(monkeypatch)
    thread, out = in_thread(next_value, user)
    assert paused.committed.wait(10)
    assert set_value(user, 100) == 100  # reserves 103 itself, under the row lock
    paused.release.set()
    thread.join()
    assert out["value"] == 101  # the late install of 7 did not lower the limit
    assert redis_conn.hget(keys.counter(user.id, "default"), "l") == b"103"
    assert reserved(user) == 103
    assert [next_value(user) for _ in range(3)] == [102, 103, 104]


def test_a_set_racing_many_nexts_keeps_every_window_free_of_repeats(make_user):
    """A window is the time between one set's acknowledgement and the start of the next set;
    a value counts in it only if its whole call ran inside it."""
    user = make_user()
    lock = threading.Lock()
    state = {"window": 0, "open": True}
    windows: dict[int, list[int]] = {0: []}
    started = threading.Barrier(7)
    stop = threading.Event()

    def work():
        started.wait()
        try:
            while not stop.is_set():
                with lock:
                    window, is_open = state["window"], state["open"]
                value = next_value(user)
                with lock:
                    if is_open and state["window"] == window:
                        windows[window].append(value)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    started.wait()
    targets = [500, 0, 10_000, 3]
    for target in targets:
        with lock:
            state["window"] += 1
            state["open"] = False
            windows[state["window"]] = []
        assert set_value(user, target) == target
        with lock:
            state["open"] = True
        while True:
            with lock:
                if len(windows[state["window"]]) >= 100:
                    break
    stop.set()
    for t in threads:
        t.join()
    for n, target in enumerate(targets, start=1):
        assert len(windows[n]) == len(set(windows[n])), "a value repeated between two sets"
        assert min(windows[n]) > target
    assert max(max(w) for w in windows.values() if w) <= reserved(user)
