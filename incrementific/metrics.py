"""Prometheus metrics, served at GET /metrics and summed over every gunicorn worker.

Two layers, for the steady `next`'s sake. A request records into plain dicts of its process (a
lock and a dict addition: a few hundred instructions); a thread of each process moves those
totals into prometheus_client's metrics every METRICS_FLUSH_SECONDS (whole seconds, default 1).
Under gunicorn those are in prometheus_client's multiprocess mode (gunicorn.conf.py: one
folder, PROMETHEUS_MULTIPROC_DIR or DATA_DIR/prometheus, emptied when the server starts, a dead
worker's files marked by child_exit), whose every write goes to a memory-mapped file: written
on each request, they cost a `next` 4.7% of its instructions (BENCHMARKS.md). The price: a
scrape sees another worker's last second late (the worker that answers flushes its own first),
and a worker killed with -9 takes its last second's counts with it.

Labels are bounded: route names from the URLconf, methods, statuses, kinds and surfaces; never a
counter's name or a user id.
"""

import atexit
import os
import threading
import time
from bisect import bisect_left
from contextvars import ContextVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from incrementific import surfaces

# Decided once, when the metrics are made: prometheus_client picks its kind of values then too.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "incrementific_http_requests", "HTTP requests answered, by route, method and status.", ["route", "method", "status"]
)
DURATION = Histogram(
    "incrementific_http_request_duration_seconds", "Time to answer a request, by route.", ["route"], buckets=BUCKETS
)
OPERATIONS = Counter(
    "incrementific_counter_operations", "Counter operations done, by kind and surface.", ["kind", "surface"]
)
HANDED_OUT = Counter("incrementific_values_handed_out", "Values handed out by next (its step each).")
RESERVATIONS = Counter("incrementific_reservations", "Blocks of values reserved in SQL (one write each).")
RESTORES = Counter("incrementific_restores", "Counters put back in Redis from SQL, by why.", ["reason"])
REPLAYS = Counter("incrementific_idempotent_replays", "Requests answered again from an Idempotency-Key's record.")
ERRORS = Counter(
    "incrementific_dependency_errors", "Failures of Redis or the database, by kind.", ["dependency", "kind"]
)
THROTTLED = Counter("incrementific_throttled_requests", "Requests refused with 429, by limit.", ["limit"])


class _Request:
    __slots__ = ("path", "route", "started")

    def __init__(self, path: str):
        self.path = path
        self.route = ""  # the URLconf's name for the matched pattern (incrementific/wsgi.py)
        self.started = time.perf_counter()


current: ContextVar[_Request | None] = ContextVar("metrics_request", default=None)


class _Pending:
    """What this process recorded since its last flush."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[tuple, float] = {}  # (metric, labels...) -> amount
        self.durations: dict[str, list] = {}  # route -> [count per bucket ..., count, sum]
        self.pid = 0


_pending = _Pending()


def _add(key: tuple, amount: float = 1) -> None:
    pending = _pending
    if pending.pid != os.getpid():
        _start()
    with pending.lock:
        pending.counts[key] = pending.counts.get(key, 0) + amount


def request_started(path: str):
    return current.set(_Request(path))


def request_finished(token, method: str, status: str) -> None:
    """At the end of every request (incrementific/wsgi.py)."""
    request = current.get()
    current.reset(token)
    if request is None:
        return
    seconds = time.perf_counter() - request.started
    route = request.route or "unmatched"
    pending = _pending
    if pending.pid != os.getpid():
        _start()
    with pending.lock:
        key = (REQUESTS, route, method if method in METHODS else "other", status[:3])
        pending.counts[key] = pending.counts.get(key, 0) + 1
        slots = pending.durations.get(route)
        if slots is None:
            slots = pending.durations[route] = [0] * (len(BUCKETS) + 3)
        slots[bisect_left(BUCKETS, seconds)] += 1
        slots[-2] += 1
        slots[-1] += seconds


def _surface() -> str:
    request = current.get()
    if request is None:
        return "other"  # a management command, a shell
    if request.path.startswith("/admin/"):
        return "admin"
    return surfaces.surface(request.path)


def operation(kind: str, *, values: int = 0) -> None:
    """A counter operation done (next, read, set, create, delete); ``values``: handed out."""
    _add((OPERATIONS, kind, _surface()))
    if values:
        _add((HANDED_OUT,), values)


def reservation() -> None:
    _add((RESERVATIONS,))


def restore(reason: str) -> None:
    """``forgotten`` (Redis lost the state) or ``takeover`` (another primary's reservation)."""
    _add((RESTORES, reason))


def replay() -> None:
    _add((REPLAYS,))


def error(dependency: str, kind: str) -> None:
    _add((ERRORS, dependency, kind))


def throttled(limit: str) -> None:
    _add((THROTTLED, limit))


def flush() -> None:
    """Move this process's totals into prometheus_client's metrics."""
    pending = _pending
    with pending.lock:
        counts, pending.counts = pending.counts, {}
        durations, pending.durations = pending.durations, {}
    for (metric, *labels), amount in counts.items():
        (metric.labels(*labels) if labels else metric).inc(amount)
    for route, slots in durations.items():
        _observe_many(DURATION.labels(route), slots)


def _observe_many(child, slots: list) -> None:
    # Histogram.observe() one sample at a time would undo the point of batching; these are the
    # same values it keeps (a count per bucket, and the sum).
    for index, count in enumerate(slots[: len(BUCKETS) + 1]):
        if count:
            child._buckets[index].inc(count)
    child._sum.inc(slots[-1])


def _start() -> None:
    """This process records for the first time (or is a new fork): a flusher of its own."""
    with _pending.lock:
        if _pending.pid == os.getpid():
            return
        _pending.pid = os.getpid()
        _pending.counts, _pending.durations = {}, {}  # a fork's copy of its parent's are the parent's
    threading.Thread(target=_flusher, name="metrics-flush", daemon=True).start()


def _flusher() -> None:
    from django.conf import settings

    while True:
        time.sleep(settings.METRICS_FLUSH_SECONDS)
        flush()


atexit.register(flush)


def render() -> tuple[bytes, str]:
    """The text format, summed over every worker in multiprocess mode."""
    flush()
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
