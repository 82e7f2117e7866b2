"""System checks (`manage.py check`) on the Redis that holds the counters.

The reservations in SQL make a Redis that *forgets* harmless (a forgotten counter resumes
above everything it handed out), but not one that comes back *stale*: an old copy of a counter
cannot be told from a live one, and `next` would hand out its last values again. See
README.md, "Redis in production".

They connect to Redis, so, like Django's database checks, they run only when asked for:
`manage.py check` (counters/management/commands/check.py) asks. Every other command (migrate,
createsuperuser, collectstatic) runs without them and needs no Redis.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.core.checks import Tags, Warning, register
from redis.exceptions import RedisError

from counters import store

# How many counter keys to sample for a TTL: enough to catch a habit, cheap on a big keyspace.
TTL_SAMPLE = 1000


def _config(client, name: str) -> str:
    return client.config_get(name).get(name, "")


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


def check_counter_redis() -> list[Warning]:
    try:
        client = store._client()
        appendonly = _config(client, "appendonly")
        appendfsync = _config(client, "appendfsync")
        save = _config(client, "save")
        policy = _config(client, "maxmemory-policy")
        sample = [key for key, _ in zip(client.scan_iter(match="ctr:*", count=500), range(TTL_SAMPLE), strict=False)]
        pipe = client.pipeline(transaction=False)
        for key in sample:
            pipe.ttl(key)
        ttls = pipe.execute()
    except RedisError as exc:
        return [
            Warning(
                f"Could not check the counters' Redis configuration: {exc}",
                hint="Make sure REDIS_URL points at a server that answers and allows CONFIG GET.",
                id="counters.W001",
            )
        ]

    warnings = []
    if appendonly == "yes" and appendfsync != "always":
        warnings.append(
            Warning(
                f"Redis appendfsync is {appendfsync!r}: a crash can bring counters back stale, "
                "and `next` would then hand out values again.",
                hint="Set appendfsync always (README.md, 'Redis in production').",
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
    # ~rate windows (COUNTER_RATE_LIMIT) expire on purpose; ~ is never part of a counter's name.
    expiring = [key.decode() for key, ttl in zip(sample, ttls, strict=True) if ttl != -1 and b":~" not in key]
    if expiring:
        warnings.append(
            Warning(
                f"{len(expiring)} counter key(s) in Redis expire, e.g. {expiring[0]}.",
                hint="Counter keys must not have a TTL; remove it with PERSIST.",
                id="counters.W006",
            )
        )
    return warnings
