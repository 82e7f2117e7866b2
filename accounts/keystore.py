"""API keys in Redis: a cache of SQL's ApiKey rows, so authenticating a key needs no SQL.

An entry is a hash with ``u`` (the user id) and ``t`` (when the key was last used, epoch
seconds), and the key's scope (accounts/scopes.py) when it has one: ``x`` when it expires (epoch
seconds), ``a`` the actions it may take (``,read,next,``), and ``s`` if it is limited to some
counters, with a field ``n:<name>`` for each (so that one HMGET of a counter's script asks about
its counter). A key that names its owner (``inc_<id>.…``, every key issued now) has its entry in
the owner's slot, ``ctr:{u<id>}:~key:<sha256>`` (counters.store.api_key_entry), where a
counter's own script can check it in the same call. Keys issued before they named their owner
have theirs at ``akey:<sha256>``. A missing entry means nothing: the caller falls back to SQL
and puts the entry back. Entries are deleted with their row, and when their user is deactivated.
"""

import math
import time
from datetime import UTC, datetime

from django_redis import get_redis_connection
from redis.exceptions import RedisError

from accounts.scopes import KeyScope
from counters.store import KEY_TOUCH_SECONDS, CounterStoreUnavailable, api_key_entry, run_script

ALIAS = "counters"

# KEYS[1] entry; ARGV[1] now; ARGV[2] touch interval -> {touched (0/1), the entry's fields and
# values} | nil (no entry, or an expired key: SQL answers for those)
_LOOKUP = """
local entry = redis.call('HMGET', KEYS[1], 'u', 't', 'x')
if not entry[1] then return nil end
if entry[3] and tonumber(ARGV[1]) >= tonumber(entry[3]) then return nil end
local touched = 0
if tonumber(ARGV[1]) - tonumber(entry[2] or 0) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 't', ARGV[1])
  touched = 1
end
return {touched, redis.call('HGETALL', KEYS[1])}
"""


def key(hashed: str, owner_id: int | None) -> str:
    """Where the entry of a key is: in its owner's slot when the key names the owner."""
    return f"akey:{hashed}" if owner_id is None else api_key_entry(owner_id, hashed)


def _client():
    return get_redis_connection(ALIAS)


def lookup(hashed: str, owner_id: int | None) -> tuple[int, bool, KeyScope] | None:
    """(user id, whether this use should be recorded in SQL, the key's scope), or None if not
    cached (or expired)."""
    reply = run_script(_LOOKUP, [key(hashed, owner_id)], [int(time.time()), KEY_TOUCH_SECONDS])
    if reply is None:
        return None
    touched, flat = reply
    fields = {name.decode(): value.decode() for name, value in zip(flat[::2], flat[1::2], strict=True)}
    return int(fields["u"]), touched == 1, _scope(fields)


def _scope(fields: dict[str, str]) -> KeyScope:
    counters = [name[2:] for name in fields if name.startswith("n:")] if "s" in fields else None
    actions = [action for action in fields["a"].split(",") if action] if "a" in fields else None
    expires = datetime.fromtimestamp(int(fields["x"]), UTC) if "x" in fields else None
    return KeyScope.of(counters, actions, expires)


def entry_fields(user_id: int, scope: KeyScope) -> dict[str, object]:
    fields: dict[str, object] = {"u": user_id, "t": int(time.time())}
    if scope.expires_at is not None:
        fields["x"] = math.ceil(scope.expires_at.timestamp())
    if scope.actions is not None:
        fields["a"] = "," + ",".join(sorted(scope.actions)) + ","
    if scope.counters is not None:
        fields["s"] = 1
        fields.update({f"n:{name}": 1 for name in scope.counters})
    return fields


def remember(hashed: str, user_id: int, scope: KeyScope, *, names_owner: bool) -> None:
    """Cache a key that SQL says belongs to ``user_id``, with its scope; ``names_owner``: whether
    the key itself names them (then its entry goes in their slot). Replaces what was there."""
    try:
        entry = key(hashed, user_id if names_owner else None)
        pipe = _client().pipeline(transaction=True)  # one slot: no reader sees half an entry
        pipe.delete(entry)
        pipe.hset(entry, mapping=entry_fields(user_id, scope))
        pipe.execute()
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
