"""Rate limits shared by every gunicorn worker: fixed windows counted in Redis.

A window (incrementific.redis.keys.account_rate) is INCR'd and given a TTL in one pipelined
round trip, so every worker and every machine counts into the same number (DRF's own
throttles keep a list in the cache and write it back, which races between processes). Rates
are "N/second", "N/minute", "N/hour" or "N/day" from settings.RATE_LIMITS; "" turns one off.
"""

from django.conf import settings

from accounts import store
from incrementific import metrics, rates


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def _window(scope: str) -> tuple[int, int, int, int] | None:
    """(window number, limit, seconds, retry-after) now, or None if the limit is off."""
    rule = rates.parse(settings.RATE_LIMITS[scope])
    if rule is None:
        return None
    limit, seconds = rule
    number, retry_after = rates.window(seconds)
    return number, limit, seconds, retry_after


def count(scope: str, ident: str) -> None:
    """Count one event against the limit, whatever the count."""
    take(scope, ident, enforce=False)


def take(scope: str, ident: str, *, enforce: bool = True) -> None:
    """Count one event; RateLimited if that passes the limit."""
    window = _window(scope)
    if window is None:
        return
    number, limit, seconds, retry_after = window
    used = store.rate_window_add(scope, ident, number, seconds=seconds + 1)
    if enforce and used > limit:
        metrics.throttled(scope)
        raise RateLimited(retry_after)


def check(scope: str, ident: str) -> None:
    """RateLimited if the limit is already used up; counts nothing."""
    window = _window(scope)
    if window is None:
        return
    number, limit, _, retry_after = window
    used = store.rate_window_count(scope, ident, number)
    if used >= limit:
        metrics.throttled(scope)
        raise RateLimited(retry_after)
