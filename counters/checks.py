"""System checks (`manage.py check`) on the Redis that holds the counters.

The reservations in SQL make a Redis that *forgets* harmless (a forgotten counter resumes
above everything it handed out), but not one that comes back *stale*: an old copy of a counter
cannot be told from a live one, and `next` would hand out its last values again. See
docs/redis-in-production.md.

They connect to Redis, so, like Django's database checks, they run only when asked for:
`manage.py check` (counters/management/commands/check.py) asks. Every other command (migrate,
createsuperuser, collectstatic) runs without them and needs no Redis.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.core.checks import Tags, Warning, register

from incrementific.redis import CounterStoreUnavailable
from incrementific.redis.inspect import Report, Shard, inspect

# How many counter keys to sample for a TTL: enough to catch a habit, cheap on a big keyspace.
TTL_SAMPLE = 1000


_asked: ContextVar[bool] = ContextVar("redis_checks_asked", default=False)


@contextmanager
def redis_checks():
    """Within it, the system checks include the Redis ones."""
    token = _asked.set(True)
    try:
        yield
    finally:
        _asked.reset(token)


@register(Tags.compatibility, "redis")
def check_counter_redis_when_asked(app_configs=None, **kwargs) -> list[Warning]:
    return check_counter_redis() if _asked.get() else []


def describe_counter_redis() -> str | None:
    """The topology the counters run on, as found, in one line (None if Redis does not answer:
    check_counter_redis says so)."""
    try:
        report = inspect(0)
    except CounterStoreUnavailable:
        return None
    if report.topology == "single":
        address = report.primary.address
        return f"Counters on a single Redis server at {address}, not fenced (README, 'Redis in production')."
    if report.topology == "cluster":
        shards = "; ".join(
            f"{s.primary.address} ({s.slots} slots, replicas {', '.join(r.address for r in s.replicas) or 'none'})"
            for s in report.shards
        )
        count = len(report.shards)
        return f"Counters on a Redis Cluster of {count} shards: {shards}; fenced by each primary's replication id."
    replicas = ", ".join(r.address for r in report.replicas) or "none"
    return (
        f"Counters on Sentinel master {report.master_name!r}: primary {report.primary.address}, replicas {replicas}; "
        f"{report.sentinels} of {report.sentinels_named} Sentinels answer; fenced by the primary's replication id."
    )


def check_counter_redis() -> list[Warning]:
    try:
        report = inspect(TTL_SAMPLE)
    except CounterStoreUnavailable as exc:
        return [
            Warning(
                f"Could not check the counters' Redis configuration: {exc}",
                hint="Make sure REDIS_URL (or REDIS_SENTINELS, REDIS_CLUSTER_NODES) names servers that answer "
                "CONFIG GET and INFO.",
                id="counters.W001",
            )
        ]
    warnings = []
    for shard in report.shards:
        # On a Cluster each primary is named: their settings may differ.
        where = f"{shard.primary.address}: " if report.topology == "cluster" else ""
        warnings += [Warning(where + w.msg, hint=w.hint, id=w.id) for w in _persistence_warnings(shard.primary.config)]
    # ~rate windows (COUNTER_RATE_LIMIT) expire on purpose; ~ is never part of a counter's name.
    expiring = [key for key, ttl in report.counter_ttls if ttl != -1 and ":~" not in key]
    if expiring:
        warnings.append(
            Warning(
                f"{len(expiring)} counter key(s) in Redis expire, e.g. {expiring[0]}.",
                hint="Counter keys must not have a TTL; remove it with PERSIST.",
                id="counters.W006",
            )
        )
    if report.topology != "single":
        for shard in report.shards:
            warnings += _failover_warnings(report, shard)
    return warnings


def _persistence_warnings(config: dict[str, str]) -> list[Warning]:
    appendonly, appendfsync, save = config.get("appendonly", ""), config.get("appendfsync", ""), config.get("save", "")
    policy = config.get("maxmemory-policy", "")
    warnings = []
    if appendonly == "yes" and appendfsync != "always":
        warnings.append(
            Warning(
                f"Redis appendfsync is {appendfsync!r}: a crash can bring counters back stale, "
                "and `next` would then hand out values again.",
                hint="Set appendfsync always (docs/redis-in-production.md).",
                id="counters.W002",
            )
        )
    if appendonly != "yes" and save:
        warnings.append(
            Warning(
                f"Redis persists counters only in RDB snapshots (save {save!r}): a restart brings "
                "them back stale, and `next` would then hand out values again.",
                hint="Set appendonly yes and appendfsync always (or save '' to keep nothing).",
                id="counters.W003",
            )
        )
    if appendonly != "yes" and not save:
        warnings.append(
            Warning(
                "Redis persistence is off: a restart loses every set and increment since each "
                "counter's last reservation (counters resume above, never repeat).",
                hint="Set appendonly yes and appendfsync always.",
                id="counters.W004",
            )
        )
    if policy.startswith("allkeys-"):
        warnings.append(
            Warning(
                f"Redis maxmemory-policy is {policy!r}: it may evict counters under memory pressure.",
                hint="Set maxmemory-policy noeviction.",
                id="counters.W005",
            )
        )
    return warnings


def _failover_warnings(report: Report, shard: Shard) -> list[Warning]:
    """What weakens the guarantees where a replica can be promoted (docs/redis-in-production.md)."""
    warnings = []
    writable = [r.address for r in shard.replicas if r.config.get("replica-read-only") == "no"]
    if writable:
        warnings.append(
            Warning(
                f"Replica(s) {', '.join(writable)} accept writes (replica-read-only no): a write there "
                "is lost at the next resync, and the fence cannot see it.",
                hint="Set replica-read-only yes on every replica.",
                id="counters.W007",
            )
        )
    if shard.primary.config.get("min-replicas-to-write", "0") == "0":
        where = f"primary {shard.primary.address}" if report.topology == "cluster" else "the primary"
        warnings.append(
            Warning(
                f"min-replicas-to-write is 0 on {where}: cut off from its replicas (a split brain), it "
                "goes on acknowledging sets that the promoted replica never sees. No value is handed out "
                "twice (the fence), but those sets are lost.",
                hint="Set min-replicas-to-write 1 and min-replicas-max-lag 10 on every server.",
                id="counters.W008",
            )
        )
    if not shard.replicas and report.topology == "cluster":
        warnings.append(
            Warning(
                f"Cluster primary {shard.primary.address} has no replicas: there is nothing to fail over to.",
                hint="Add a replica (valkey-cli --cluster add-node <new> <any> --cluster-slave).",
                id="counters.W009",
            )
        )
    elif not shard.replicas:
        warnings.append(
            Warning(
                f"Sentinel master {report.master_name!r} has no replicas: there is nothing to fail over to.",
                hint="Add a replica (replicaof <primary> <port>) and let the Sentinels discover it.",
                id="counters.W009",
            )
        )
    return warnings
