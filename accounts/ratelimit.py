"""Rate limits shared by every gunicorn worker: fixed windows counted in Redis.

A window is ``rl:<scope>:<ident>:<window number>``, INCR'd and given a TTL in one pipelined
round trip, so every worker and every machine counts into the same number (DRF's own
throttles keep a list in the cache and write it back, which races between processes). Rates
are "N/second", "N/minute", "N/hour" or "N/day" from settings.RATE_LIMITS; "" turns one off.
"""

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from counters.store import CounterStoreUnavailable
from incrementific import rates


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def _window(scope: str, ident: str) -> tuple[str, int, int, int] | None:
    rule = rates.parse(settings.RATE_LIMITS[scope])
    if rule is None:
        return None
    limit, seconds = rule
    number, retry_after = rates.window(seconds)
    return f"rl:{scope}:{ident}:{number}", limit, seconds, retry_after


def _redis():
    return get_redis_connection("counters")


def count(scope: str, ident: str) -> None:
    """Count one event against the limit, whatever the count."""
    take(scope, ident, enforce=False)


def take(scope: str, ident: str, *, enforce: bool = True) -> None:
    """Count one event; RateLimited if that passes the limit."""
    window = _window(scope, ident)
    if window is None:
        return
    key, limit, seconds, retry_after = window
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, seconds + 1)
        used, _ = pipe.execute()
    except RedisError as exc:
        raise CounterStoreUnavailable(str(exc)) from exc
    if enforce and used > limit:
        raise RateLimited(retry_after)


def check(scope: str, ident: str) -> None:
    """RateLimited if the limit is already used up; counts nothing."""
    window = _window(scope, ident)
    if window is None:
        return
    key, limit, _, retry_after = window
    try:
        used = int(_redis().get(key) or 0)
    except RedisError as exc:
        raise CounterStoreUnavailable(str(exc)) from exc
    if used >= limit:
        raise RateLimited(retry_after)
