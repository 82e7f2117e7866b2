"""API keys in Redis: a cache of SQL's ApiKey rows, so authenticating a key needs no SQL.

Layout: ``akey:<sha256 of the key>`` is a hash with ``u`` (the user id) and ``t`` (when the key
was last used, epoch seconds). A missing entry means nothing: the caller falls back to SQL and
puts the entry back. Entries are deleted with their row, and when their user is deactivated.
"""

import time

from django_redis import get_redis_connection
from redis.exceptions import RedisError

from counters.store import CounterStoreUnavailable, run_script

ALIAS = "counters"
# last-used times are written back at most this often, so a busy key costs no write per request
TOUCH_SECONDS = 60

# KEYS[1] entry; ARGV[1] now; ARGV[2] touch interval -> {user id, touched (0/1)} | nil
_LOOKUP = """
local entry = redis.call('HMGET', KEYS[1], 'u', 't')
if not entry[1] then return nil end
if tonumber(ARGV[1]) - tonumber(entry[2] or 0) < tonumber(ARGV[2]) then return {entry[1], 0} end
redis.call('HSET', KEYS[1], 't', ARGV[1])
return {entry[1], 1}
"""


def key(hashed: str) -> str:
    return f"akey:{hashed}"


def _client():
    return get_redis_connection(ALIAS)


def lookup(hashed: str) -> tuple[int, bool] | None:
    """(user id, whether this use should be recorded in SQL), or None if not cached."""
    reply = run_script(_LOOKUP, [key(hashed)], [int(time.time()), TOUCH_SECONDS])
    return None if reply is None else (int(reply[0]), reply[1] == 1)


def remember(hashed: str, user_id: int) -> None:
    try:
        _client().hset(key(hashed), mapping={"u": user_id, "t": int(time.time())})
    except RedisError as exc:
        raise CounterStoreUnavailable(str(exc)) from exc


def forget(*hashed: str) -> None:
    if not hashed:
        return
    try:
        _client().delete(*(key(h) for h in hashed))
    except RedisError as exc:
        raise CounterStoreUnavailable(str(exc)) from exc
