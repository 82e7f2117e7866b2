"""Many keys read at once: one pipeline per primary that holds some, on every topology."""

import contextlib
import time

import redis
from redis.exceptions import AskError, ClusterDownError, RedisError, TryAgainError

from incrementific.redis import REDIS_ERRORS, connection, guarded

# A read of many keys on a Cluster in the middle of a reshard or a failover: tries, and the pause
# before each try after the first (the slots are read again in between).
_READ_TRIES = 5
_READ_PAUSE_SECONDS = 0.05


def _read_on_primaries(reads: list[tuple]) -> list[tuple[bytes, object]]:
    """Run these commands on the primaries that hold their keys, one pipeline per primary, each
    led by INFO where fenced; returns (the primary's id, or b'' unfenced; the reply) for each, in
    order. A command whose primary moved or failed (MOVED, ASK, a replica, a lost connection)
    is sent again where the slots say now; the others are not (INCR counts once). A primary that
    does not answer in time fails the whole read."""
    fenced = connection.fenced()
    cluster = connection.topology() == "cluster"
    client = connection.client()
    answers: dict[int, tuple[bytes, object]] = {}
    pending = list(range(len(reads)))
    for attempt in range(_READ_TRIES):
        if attempt:
            time.sleep(_READ_PAUSE_SECONDS * attempt)
            if cluster:
                client.nodes_manager.initialize()
            else:  # a demoted primary (Sentinel): look the primary up again
                client.connection_pool.disconnect()
        groups: dict[str, tuple[object, list[int]]] = {}
        for index in pending:
            if cluster:
                node = client.nodes_manager.get_node_from_slot(client.keyslot(reads[index][1]))
                server = client.get_redis_connection(node)
                groups.setdefault(node.name, (server, []))[1].append(index)
            else:
                groups.setdefault("", (client, []))[1].append(index)
        failed: list[int] = []
        for name, (server, indices) in groups.items():
            pipe = server.pipeline(transaction=False)
            if fenced:
                pipe.info("replication")
            for index in indices:
                pipe.execute_command(*reads[index])
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.TimeoutError:
                # A node that does not answer in time is not asked again: the page is a 503
                # within REDIS_TIMEOUT_SECONDS (on a Cluster the slot map is read again first).
                if cluster:
                    with contextlib.suppress(*REDIS_ERRORS):
                        client.nodes_manager.initialize(last_failed_node_name=name)
                raise
            except redis.ConnectionError:
                failed += indices
                continue
            primary = b""
            if fenced:
                info, replies = replies[0], replies[1:]
                if isinstance(info, Exception) or info["role"] != "master":
                    failed += indices
                    continue
                primary = info["master_replid"].encode()
            for index, reply in zip(indices, replies, strict=True):
                if _redirected(reply):
                    failed.append(index)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    answers[index] = (primary, reply)
        if not failed:
            return [answers[index] for index in range(len(reads))]
        pending = sorted(failed)
    raise RedisError(f"{len(pending)} of {len(reads)} keys found no primary after {_READ_TRIES} tries")


def _redirected(reply: redis.ResponseError) -> bool:
    """MOVED, ASK (MovedError is one), TRYAGAIN, CLUSTERDOWN: the key's slot is served elsewhere,
    or not yet."""
    return isinstance(reply, AskError | TryAgainError | ClusterDownError)


def read_on_primaries(reads: list[tuple]) -> list[tuple[bytes, object]]:
    """:func:`_read_on_primaries`, its failures as CounterStoreUnavailable."""
    with guarded():
        return _read_on_primaries(reads)
