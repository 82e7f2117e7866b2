"""Redis, behind one door: the only package that imports redis-py.

What is here is what every app's data in Redis shares; the verbs live beside the app that owns
the data (counters/store.py: counters, their history stream; accounts/store.py: API-key
entries, revocation marks, rate windows, provider identities; incrementific/idempotency.py:
Idempotency-Key records).

* ``connection.py`` builds the one client for the topology the settings name (one server,
  Sentinel or Cluster) and holds the fast path scripts run on;
* ``keys.py`` names every key, with the layout and the slot each lands in;
* ``lua/*.lua`` are the scripts, each opening with its KEYS, ARGV and replies, and
  ``scripts.py`` loads them; ``replies.py`` names their reply codes, once, for Python;
* ``pages.py`` reads many keys in one pipeline per primary (a page of counters);
* ``inspect.py`` describes the servers, for ``manage.py check``.

Every failure of Redis, whatever the topology, leaves here as one exception,
:class:`CounterStoreUnavailable`, which the API answers with a 503; it is logged and counted
once, here.
"""

import contextlib
import logging

from redis.exceptions import RedisClusterException, RedisError

from incrementific import metrics
from incrementific.redis import connection, scripts

logger = logging.getLogger(__name__)


class CounterStoreUnavailable(Exception):
    """Redis did not answer, or answered with an error: the API says 503."""


# What redis-py raises when Redis cannot be reached or refuses. RedisCluster's own errors are no
# RedisError: a cluster none of whose seeds answers, a slot that no node serves.
REDIS_ERRORS = (RedisError, RedisClusterException)


def unavailable(exc: Exception) -> CounterStoreUnavailable:
    metrics.error("redis", type(exc).__name__)
    # Sentinel's MasterNotFoundError ends with the repr of every Sentinel client: a screenful.
    message = str(exc).split(" : <redis.", 1)[0]
    logger.error("counter store unavailable: %s: %s", type(exc).__name__, message)
    return CounterStoreUnavailable(message)


@contextlib.contextmanager
def guarded():
    """Any Redis failure inside becomes :class:`CounterStoreUnavailable`."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise unavailable(exc) from exc


def run(script: scripts.Script, keys: list[str], args: list) -> object:
    """Run a script in one round trip; its reply as Redis gave it."""
    try:
        return script(keys, args)
    except REDIS_ERRORS as exc:
        raise unavailable(exc) from exc


def client():
    """The topology's redis-py client, for the verbs that are one plain command or a pipeline
    (call them inside :func:`guarded`)."""
    return connection.client()


def command(*args) -> object:
    """One command on the fast path (connection.command), errors guarded."""
    try:
        return connection.command(*args)
    except REDIS_ERRORS as exc:
        raise unavailable(exc) from exc


def fenced() -> bool:
    return connection.fenced()


def ping() -> None:
    """Raises CounterStoreUnavailable unless the primary answers (on a Cluster: every primary,
    so that /readyz says so while one shard has none)."""
    with guarded():
        redis_client = connection.client()
        if connection.topology() == "cluster":
            redis_client.ping(target_nodes=redis_client.PRIMARIES)
        else:
            redis_client.ping()
