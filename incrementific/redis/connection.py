"""The store's one Redis client, built for the topology the settings name, and its fast path.

* A single server (REDIS_URL): django-redis's client for the ``counters`` alias (settings.CACHES),
  so tests can point it at a server of their own with ``override_settings``.
* Sentinel (REDIS_SENTINELS): redis-py's own ``Sentinel`` and its managed pool on the primary
  named REDIS_SENTINEL_MASTER. A new connection asks the Sentinels where the primary is, and a
  READONLY reply (the server was demoted) closes the connection and raises a connection error,
  which the connection's Retry answers by connecting again, to the primary the Sentinels name now.
  Every verb goes to the primary: a replica's read could show a value below one handed out.
* Cluster (REDIS_CLUSTER_NODES): redis-py's own ``RedisCluster``, seeded with those nodes. Every
  script's keys share the owner's hash tag (keys.py), so each runs on one slot's primary; the
  client follows MOVED and ASK (a reshard, a failover) and reads the slots again after a
  connection error. Reads go to primaries only, as above.

Where the topology can fail over, the scripts are fenced (:func:`fenced`; lua/fence.lua).
"""

import collections
import contextlib
import functools
import os
from typing import NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis import get_redis_connection
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel

ALIAS = "counters"


def topology() -> str:
    """``single``, ``sentinel`` or ``cluster``, as the settings name it (one at most: settings.py)."""
    if settings.REDIS_CLUSTER_NODES:
        return "cluster"
    return "sentinel" if settings.REDIS_SENTINELS else "single"


def fenced() -> bool:
    """Whether state carries the primary that wrote it (lua/fence.lua): where a failover can
    promote a replica that was behind. A single server that restarts from its own append-only
    file holds every acknowledged write, and resumes with no value skipped."""
    return topology() != "single"


@functools.cache
def client():
    # One client per process: django-redis finds it through the per-thread cache handler on
    # every call (1.3% of a `next`). It is thread-safe, and its pool reconnects by itself.
    if topology() == "single":
        return get_redis_connection(ALIAS)
    if topology() == "cluster":
        return _cluster()
    return _sentinel().master_for(
        settings.REDIS_SENTINEL_MASTER,
        **data_options(),
        socket_timeout=settings.REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.REDIS_TIMEOUT_SECONDS,
        # As settings.CACHES: one immediate retry, which here also finds a new primary.
        retry=Retry(NoBackoff(), 1),
    )


def _cluster() -> RedisCluster:
    options = data_options()
    options.pop("db", None)  # database 0, the only one (settings.py refuses another)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in settings.REDIS_CLUSTER_NODES],
        **options,
        socket_timeout=settings.REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=settings.REDIS_TIMEOUT_SECONDS,
        # After a connection error the client reads the slots again (from a node that answers)
        # and tries once more: after a failover, the promoted replica answers that retry. A
        # slot whose primary is down is a 503 after that one retry, not a wait.
        retry=Retry(NoBackoff(), 1),
        # While one shard has no primary, the others serve.
        require_full_coverage=False,
    )


@functools.cache
def _sentinel() -> Sentinel:
    timeout = settings.REDIS_TIMEOUT_SECONDS
    return Sentinel(
        settings.REDIS_SENTINELS,
        sentinel_kwargs={
            "password": settings.REDIS_SENTINEL_PASSWORD,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # The next Sentinel is the retry: redis-py's default backs off and tries each again
            # (7.7 s for one that is down).
            "retry": Retry(NoBackoff(), 0),
        },
    )


def sentinel() -> Sentinel:
    """The Sentinels themselves (manage.py check asks them about the primary and its replicas)."""
    return _sentinel()


def data_options() -> dict:
    """What REDIS_URL still says under Sentinel or Cluster: the database, the data user and password."""
    url = parse_url(settings.REDIS_URL)
    return {name: url[name] for name in ("db", "username", "password") if url.get(name) is not None}


_TOPOLOGY_SETTINGS = (
    "CACHES",
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_CLUSTER_NODES",
)


@receiver(setting_changed)
def _forget_client(setting, **kwargs):
    if setting in _TOPOLOGY_SETTINGS:
        client.cache_clear()  # tests point the store at another server
        _sentinel.cache_clear()


class _Idle(NamedTuple):
    """The connections scripts use that no call holds right now (see command)."""

    pool: object  # the client's pool, whose settings they were made with
    connections: collections.deque  # append() and pop() are atomic: no lock needed


_idle = _Idle(None, collections.deque())


def command(*args) -> object:
    """Send one command and return its reply, on a connection of the store's own.

    What ``client.execute_command()`` does for a script, less what this project does not use
    (OpenTelemetry hooks, HIMPORT's dispatch, reply callbacks, of which scripts have none), and
    without the pool's checks when it lends a connection and takes it back (a lock, a poll of
    the socket, metrics): 9.1% of a `next`'s instructions in all (BENCHMARKS.md). A connection
    goes back idle only in step with Redis (see _send_and_read), which is what the pool's poll
    makes sure of. The retry is the client's own: the connection's Retry reconnects and sends
    again after a connection error or a timeout, so a connection that Redis closed costs no
    error. Connections are made as the pool makes them, so under Sentinel they are the pool's
    managed ones: each connects to the primary the Sentinels name at that moment, and one that
    finds a replica (READONLY) reconnects (tests/test_ha.py). An error reply raises as it does
    there (NoScriptError, ResponseError)."""
    idle = _idle
    try:
        pool = client().connection_pool
    except AttributeError:  # a RedisCluster
        return _cluster_command(args)
    if idle.pool is not pool:  # the first call, or tests pointed the store at another server
        idle = _use_pool(pool)
    try:
        conn = idle.connections.pop()
    except IndexError:
        conn = pool.connection_class(**pool.connection_kwargs)  # as the pool makes them
    try:
        return conn.retry.call_with_retry(lambda: _send_and_read(conn, args), lambda error: conn.disconnect())
    finally:
        idle.connections.append(conn)


def _use_pool(pool) -> _Idle:
    """Start over with no idle connections, for ``pool``'s server (None: whichever is next)."""
    global _idle
    _idle = _Idle(pool, collections.deque())
    _node_idle.clear()
    return _idle


# A Cluster's: each node's pool (redis-py's own, per node), and its connections no call holds.
_node_idle: dict[object, collections.deque] = {}


def _cluster_command(args: tuple) -> object:
    """A script on a Cluster, sent as command() sends it, to the primary that the client's slot
    map names for its first key. Anything else, and whatever the map no longer gets right (MOVED,
    ASK, TRYAGAIN, CLUSTERDOWN, a node that refuses or closed the connection), goes to the
    client's ``execute_command()``, which follows the redirect, reads the map again and retries:
    so the steady call costs what it costs on one server (BENCHMARKS.md), and a reshard or a
    failover what redis-py's own handling costs. A node that does not answer in time is not
    asked again (below): the call may have run, and a retry would only wait once more."""
    cluster = client()
    try:
        if args[0] not in ("EVALSHA", "EVAL") or args[2] == 0:
            raise LookupError(args[0])
        primary = cluster.nodes_manager.get_node_from_slot(key_slot(args[3].encode()))
        pool = primary.redis_connection.connection_pool
    except (
        LookupError,
        AttributeError,
        SlotNotCoveredError,
    ):  # not a script, a slot not mapped yet, a node not met yet
        return cluster.execute_command(*args)
    idle = _node_idle.get(pool)
    if idle is None:
        idle = _node_idle.setdefault(pool, collections.deque())
    try:
        conn = idle.pop()
    except IndexError:
        conn = pool.connection_class(**pool.connection_kwargs)
    try:
        return _send_and_read(conn, args)
    except (AskError, TryAgainError, ClusterDownError, RedisConnectionError):
        pass  # MovedError is an AskError; the connection is in step, or closed (_send_and_read)
    except RedisTimeoutError:
        # The node does not answer (a hung primary, a partition): this call fails (a 503) within
        # REDIS_TIMEOUT_SECONDS, and the map is read again, that node asked last, for the next.
        with contextlib.suppress(RedisError, RedisClusterException):
            cluster.nodes_manager.initialize(last_failed_node_name=primary.name)
        raise
    finally:
        idle.append(conn)
    return cluster.execute_command(*args)


# A forked child (a gunicorn worker) makes its own connections: the inherited sockets are the
# parent's.
os.register_at_fork(after_in_child=lambda: _use_pool(None))


def _send_and_read(conn, args: tuple) -> object:
    try:
        if not conn.is_connected:
            # Connect the way the connection's class does: a Sentinel-managed one asks the
            # Sentinels where the primary is. send_command() would connect by itself, but
            # around that (redis-py 8: connect_check_health), to the address last used, or to
            # localhost:6379 for a new connection; the pool's get_connection() calls connect().
            conn.connect()
        conn.send_command(*args)
        return conn.read_response()
    except ResponseError:
        raise  # a whole reply, read: the connection is in step
    except BaseException:
        # redis-py disconnects when sending or reading is interrupted; this covers the moment
        # between the two. A reply left unread must never be taken as the next call's.
        conn.disconnect()
        raise
