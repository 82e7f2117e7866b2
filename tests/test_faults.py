"""Redis breaks on purpose while counters are in use. Each test starts its own server
(`private_redis`) and stops it by its pid; none touches a server it did not start."""

import logging
import signal
import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from counters import services, store
from incrementific.redis import connection as redis_connection
from incrementific.redis_server import RedisServer, free_port
from tests.conftest import bearer

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


class Hammer:
    """Threads calling `next` on one counter until stopped, recording every value returned
    and when, and every failure (503s are expected while Redis is down)."""

    def __init__(self, user, threads: int = 6):
        self.user = user
        self.values: list[tuple[float, int]] = []
        self.failures = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._work) for _ in range(threads)]

    def _work(self):
        try:
            while not self.stop.is_set():
                try:
                    value = services.counter_next(owner_id=self.user.id, name="default").value
                except store.CounterStoreUnavailable:
                    with self.lock:
                        self.failures += 1
                    time.sleep(0.005)
                    continue
                with self.lock:
                    self.values.append((time.monotonic(), value))
        finally:
            connection.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def wait_for(self, count: int, timeout: float = 30):
        deadline = time.monotonic() + timeout
        target = len(self.values) + count
        while len(self.values) < target:
            assert time.monotonic() < deadline, f"only {len(self.values)} values in {timeout}s"
            time.sleep(0.01)

    def snapshot(self) -> list[int]:
        with self.lock:
            return [v for _, v in self.values]


def assert_no_repeats_and_resumes_above(hammer: Hammer, before: list[int], after: list[int]):
    everything = hammer.snapshot()  # including the values returned while the fault went on
    assert len(everything) == len(set(everything)), "a value was handed out twice"
    assert before and after
    assert min(after) > max(before), "a value after the fault is not above every value before it"


def run_fault(user, fault, warmup=300, cooldown=300):
    """Returns the hammer, the values returned before the fault began and after it ended."""
    with Hammer(user) as hammer:
        hammer.wait_for(warmup)
        before_fault = time.monotonic()
        fault()
        after_fault = time.monotonic()
        hammer.wait_for(cooldown)
    before = [v for t, v in hammer.values if t < before_fault]
    after = [v for t, v in hammer.values if t > after_fault]
    return hammer, before, after


UNAVAILABLE = {"detail": "Counter storage is unavailable, try again.", "code": "counter_store_unavailable"}


def test_kill_9_and_restart_from_the_aof_loses_and_repeats_nothing(make_user, private_redis, caplog):
    user = make_user()

    def crash():
        private_redis.kill()
        private_redis.start()

    with caplog.at_level(logging.WARNING, logger="counters.services"):
        hammer, before, after = run_fault(user, crash)
    assert_no_repeats_and_resumes_above(hammer, before, after)
    # appendfsync always: the counter came back from the AOF as it was, not restored from its
    # reservation. The only values missing are those in flight at the kill (written, but their
    # answer lost with the connection): at most one per thread, none of them acknowledged.
    assert not [m for m in caplog.messages if m.startswith("counter restored")]
    values = sorted(hammer.snapshot())
    missing = set(range(1, values[-1] + 1)) - set(values)
    assert len(missing) <= len(hammer.threads)


def test_flushall_resumes_above_every_value_handed_out(make_user, private_redis, settings):
    user = make_user()
    flush = lambda: redis_connection.client().flushall()  # noqa: E731
    hammer, before, after = run_fault(user, flush)
    assert_no_repeats_and_resumes_above(hammer, before, after)
    # What a flush may cost: the rest of the block reserved when Redis forgot the counter, and
    # the values of the calls in flight. Values handed out while the flush ran are not lost.
    skipped = set(range(max(before) + 1, min(after))) - set(hammer.snapshot())
    assert len(skipped) <= settings.COUNTER_BLOCK_SIZE + 1 + len(hammer.threads), sorted(skipped)


def test_a_new_empty_server_resumes_above_every_value_handed_out(make_user, private_redis, tmp_path):
    user = make_user()

    def replace():
        private_redis.use(RedisServer(tmp_path / "fresh").start())
        private_redis.stop()

    hammer, before, after = run_fault(user, replace)
    assert_no_repeats_and_resumes_above(hammer, before, after)


def test_losing_redis_without_persistence_repeats_nothing(make_user, private_redis, tmp_path):
    user = make_user()
    volatile = private_redis.use(RedisServer(tmp_path / "volatile", appendonly=False).start())

    def crash():
        volatile.kill()
        volatile.start()

    hammer, before, after = run_fault(user, crash)
    assert_no_repeats_and_resumes_above(hammer, before, after)


COUNTER_ENDPOINTS = [
    ("get", "/api/counters", None),
    ("post", "/api/counters", {"name": "new"}),
    ("get", "/api/counters/default", None),
    ("put", "/api/counters/default", {"value": 5}),
    ("patch", "/api/counters/default", {"value": 5}),
    ("post", "/api/counters/default/next", None),
    ("delete", "/api/counters/default", None),
]


def test_an_outage_is_a_503_everywhere_and_it_serves_again_without_a_restart(make_user, private_redis, client):
    from rest_framework.test import APIClient

    user = make_user()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=bearer(user))
    assert api.post("/api/counters/default/next").json()["value"] == 1
    private_redis.stop()
    for method, path, body in COUNTER_ENDPOINTS:
        r = getattr(api, method)(path, body, format="json")
        assert r.status_code == 503, (method, path)
        assert r.json() == {"detail": "Counter storage is unavailable, try again.", "code": "counter_store_unavailable"}
    assert client.get("/healthz").status_code == 503
    assert user.counters.count() == 1  # the failed create and delete changed nothing

    private_redis.start()  # the same server again, from its AOF; the app is not restarted
    assert client.get("/healthz").status_code == 200
    assert api.post("/api/counters/default/next").json()["value"] == 2
    assert api.get("/api/counters").json()["count"] == 1


def test_a_paused_redis_is_a_503_after_the_timeout_not_a_hang(make_user, private_redis, settings):
    caches = settings.CACHES
    caches["counters"]["OPTIONS"] = {**caches["counters"]["OPTIONS"], "SOCKET_TIMEOUT": 0.3}
    settings.CACHES = caches
    user = make_user()
    private_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises(store.CounterStoreUnavailable):
            services.counter_next(owner_id=user.id, name="default")
        assert time.monotonic() - started < 5
    finally:
        private_redis.resume()
    assert services.counter_next(owner_id=user.id, name="default").value >= 1


def test_connections_redis_closed_are_reconnected_and_the_call_made_once_more(private_redis):
    # settings.CACHES gives the store's connections one immediate retry: after Redis closed
    # them (a restart, a client timeout), the next call reconnects and is answered, not a 503.
    store.create(1, "c", value=0, limit=10**6, created="x")
    assert store.next_value(1, "c", 1).value == 1
    assert redis_connection.client().client_kill_filter(skipme=True) >= 1  # every connection but this one
    assert store.next_value(1, "c", 1) == store.State(2, "x")
    assert store.get(1, "c").value == 2


class Interrupted(BaseException):
    """Raised by a signal handler in the middle of a call, as a worker's shutdown might."""


def interrupt(*args, **kwargs):
    raise Interrupted


def test_a_call_interrupted_while_it_waits_leaves_no_reply_for_the_next_call(private_redis):
    # The store keeps its connections from one call to the next. A call stopped between
    # sending its script and reading the reply must not leave that reply to be read as the
    # next call's: the next call here is on another counter, and must get that counter's value.
    store.create(1, "a", value=0, limit=10**6, created="x")
    store.create(1, "b", value=100, limit=10**6, created="x")
    assert store.next_value(1, "a", 1).value == 1
    previous = signal.signal(signal.SIGALRM, interrupt)
    private_redis.pause()  # the script is sent, and its reply waits for the resume
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            store.next_value(1, "a", 1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        private_redis.resume()
    assert store.next_value(1, "b", 1) == store.State(101, "x")
    assert store.get(1, "a").value in (1, 2)  # the interrupted call ran or not; nobody was told


@pytest.mark.single_server  # the store's own fast path (a Cluster's calls go through redis-py's)
def test_a_call_interrupted_before_it_reads_leaves_no_reply_for_the_next_call(redis_conn, monkeypatch):
    # The same, with the interruption after the script is sent and before its reply is read.
    store.create(1, "a", value=0, limit=10**6, created="x")
    store.create(1, "b", value=100, limit=10**6, created="x")
    assert store.next_value(1, "a", 1).value == 1
    conn = redis_connection._idle.connections[-1]  # the one the next call takes (the last given back)
    monkeypatch.setattr(conn, "read_response", interrupt)
    with pytest.raises(Interrupted):
        store.next_value(1, "a", 1)
    monkeypatch.undo()
    assert store.next_value(1, "b", 1) == store.State(101, "x")
    assert store.get(1, "a").value == 2  # sent and run, but its answer reached nobody


def test_a_cluster_none_of_whose_seeds_answers_is_a_503_and_changes_nothing(alice, alice_client, settings):
    # RedisCluster raises its own errors, which are no RedisError, when it cannot learn the slots.
    topology = settings.REDIS_CLUSTER_NODES  # the session's cluster under `make test-cluster`
    settings.REDIS_CLUSTER_NODES = [("127.0.0.1", free_port()), ("127.0.0.1", free_port())]
    for method, path in [
        ("post", "/api/counters/default/next"),
        ("get", "/api/counters"),
        ("get", "/api/counters/default"),
    ]:
        r = getattr(alice_client, method)(path)
        assert (r.status_code, r.json()) == (503, UNAVAILABLE), path
    r = APIClient().post("/api/auth/token", {"username": "alice", "password": "a-long-enough-passphrase"})
    assert (r.status_code, r.json()) == (503, UNAVAILABLE)  # the login throttle's window is in Redis too
    settings.REDIS_CLUSTER_NODES = topology
    assert alice_client.get("/api/counters/default").json()["value"] == 0
