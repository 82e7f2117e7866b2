"""Rates as the settings write them: "N/second", "N/minute", "N/hour" or "N/day"."""

import math
import time

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse(rate: str) -> tuple[int, int] | None:
    """'10/minute' -> (10, 60); '' -> None (no limit)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period]


def window(seconds: int) -> tuple[int, int]:
    """The current fixed window's number, and the seconds until the next one begins."""
    now = time.time()
    return int(now // seconds), max(1, math.ceil(seconds - now % seconds))
