"""API keys in Redis: a cache of SQL's ApiKey rows, so authenticating a key needs no SQL.

An entry is a hash with ``u`` (the user id) and ``t`` (when the key was last used, epoch
seconds). A key that names its owner (``inc_<id>.…``, every key issued now) has its entry in
the owner's slot, ``ctr:{u<id>}:~key:<sha256>`` (counters.store.api_key_entry), where a
counter's own script can check it in the same call. Keys issued before they named their owner
have theirs at ``akey:<sha256>``. A missing entry means nothing: the caller falls back to SQL
and puts the entry back. Entries are deleted with their row, and when their user is deactivated.
"""

import time

from django_redis import get_redis_connection
from redis.exceptions import RedisError

from counters.store import KEY_TOUCH_SECONDS, CounterStoreUnavailable, api_key_entry, run_script

ALIAS = "counters"

# KEYS[1] entry; ARGV[1] now; ARGV[2] touch interval -> {user id, touched (0/1)} | nil
_LOOKUP = """
local entry = redis.call('HMGET', KEYS[1], 'u', 't')
if not entry[1] then return nil end
if tonumber(ARGV[1]) - tonumber(entry[2] or 0) < tonumber(ARGV[2]) then return {entry[1], 0} end
redis.call('HSET', KEYS[1], 't', ARGV[1])
return {entry[1], 1}
"""


def key(hashed: str, owner_id: int | None) -> str:
    """Where the entry of a key is: in its owner's slot when the key names the owner."""
    return f"akey:{hashed}" if owner_id is None else api_key_entry(owner_id, hashed)


def _client():
    return get_redis_connection(ALIAS)


def lookup(hashed: str, owner_id: int | None) -> tuple[int, bool] | None:
    """(user id, whether this use should be recorded in SQL), or None if not cached."""
    reply = run_script(_LOOKUP, [key(hashed, owner_id)], [int(time.time()), KEY_TOUCH_SECONDS])
    return None if reply is None else (int(reply[0]), reply[1] == 1)


def remember(hashed: str, user_id: int, *, names_owner: bool) -> None:
    """Cache a key that SQL says belongs to ``user_id``; ``names_owner``: whether the key itself
    names them (then its entry goes in their slot)."""
    try:
        entry = key(hashed, user_id if names_owner else None)
        _client().hset(entry, mapping={"u": user_id, "t": int(time.time())})
    except RedisError as exc:
        raise CounterStoreUnavailable(str(exc)) from exc


def forget(keys: list[tuple[str, int]]) -> None:
    """Drop the entries of these keys, (hashed, user id) each, wherever they are."""
    if not keys:
        return
    try:
        pipe = _client().pipeline(transaction=False)
        for hashed, user_id in keys:
            # one DEL per key: the two entries are in different Cluster slots
            pipe.delete(key(hashed, None))
            pipe.delete(key(hashed, user_id))
        pipe.execute()
    except RedisError as exc:
        raise CounterStoreUnavailable(str(exc)) from exc
