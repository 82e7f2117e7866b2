"""The only module that speaks Redis.

Layout: one hash per counter at ``ctr:{u<owner_id>}:<name>`` (see :func:`key`), with fields

* ``v``: the current value, a decimal integer from 0 to 2**63-1;
* ``l``: the limit, a copy of the counter's SQL ``reserved_through`` as it was when last
  raised here; ``next`` never goes past it (see counters/services.py for why);
* ``c``: the creation time as the API renders it, so reads need no SQL.

Every change is one atomic server-side step (a Lua script or a single command); nothing is
read into Python, changed and written back. A missing hash is never read as zero: it means
Redis forgot the counter (or it never existed), and :class:`StateMissing` tells the service
to restore it from SQL.

Lua numbers are doubles, exact only below 2**53, so the scripts never do arithmetic on
values: HINCRBY adds exactly in 64 bits (and refuses to overflow), and comparisons are done
on the decimal strings.
"""

import hashlib
import logging
from dataclasses import dataclass

from django_redis import get_redis_connection
from redis.exceptions import NoScriptError, RedisError

logger = logging.getLogger(__name__)

ALIAS = "counters"


class CounterStoreUnavailable(Exception):
    """Redis did not answer, or answered with an error: the API says 503."""


class StateMissing(Exception):
    """Redis holds no state for this counter: it forgot it, or the counter does not exist."""


class LimitReached(Exception):
    """The change would pass the counter's reserved limit; reserve more and try again."""

    def __init__(self, needed: int):
        super().__init__(needed)
        self.needed = needed


class ValueOverflow(Exception):
    """The change would take the value past 2**63-1."""


@dataclass(frozen=True)
class State:
    value: int
    created: str


def key(owner_id: int, name: str) -> str:
    """The Redis key of a counter.

    >>> key(42, "invoices")
    'ctr:{u42}:invoices'

    Built from what every request already carries (the user id from the token and the name
    from the URL), so finding a counter needs no SQL. The ``{u42}`` hash tag puts all of one
    user's counters in one Redis Cluster slot. Names are ``[A-Za-z0-9_.-]`` only, so they can
    contain neither braces nor a colon.
    """
    return f"ctr:{{u{owner_id}}}:{name}"


_PRELUDE = """
local function above(a, b)  -- a > b, for decimal strings of non-negative integers
  if #a ~= #b then return #a > #b end
  return a > b
end
local function limit_in_force(limit, reserved)  -- installs a newly reserved, higher limit
  if reserved and above(reserved, limit) then
    redis.call('HSET', KEYS[1], 'l', reserved)
    return reserved
  end
  return limit
end
"""

# KEYS[1] counter; ARGV[1] step; ARGV[2] (optional) a newly reserved limit to install first.
# -> {0} missing | {1, value, created} | {2} overflow | {3, value} limit reached (value unchanged)
_NEXT = (
    _PRELUDE
    + """
local state = redis.call('HMGET', KEYS[1], 'v', 'l', 'c')
if not state[1] then return {0} end
local limit = limit_in_force(state[2], ARGV[2])
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow') then return {2} end
  return r
end
local value = redis.call('HGET', KEYS[1], 'v')
if above(value, limit) then
  -- Past the reservation: put the exact old value back. Nothing outside this script saw it.
  redis.call('HSET', KEYS[1], 'v', state[1])
  return {3, state[1]}
end
return {1, value, state[3]}
"""
)

# KEYS[1] counter; ARGV[1] value; ARGV[2] (optional) a newly reserved limit to install first.
# -> {0} missing | {1, value, created} | {3} value above the limit (nothing changed)
_SET = (
    _PRELUDE
    + """
local state = redis.call('HMGET', KEYS[1], 'l', 'c')
if not state[1] then return {0} end
local limit = limit_in_force(state[1], ARGV[2])
if above(ARGV[1], limit) then return {3} end
redis.call('HSET', KEYS[1], 'v', ARGV[1])
return {1, ARGV[1], state[2]}
"""
)

# KEYS[1] counter; ARGV[1] value and limit; ARGV[2] created. Only fills a hole: a state that
# reappeared meanwhile (another request restored it first) is left alone. -> 1 restored | 0
_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'l', ARGV[1], 'c', ARGV[2])
return 1
"""

# KEYS[1] counter; ARGV value, limit, created. Replaces whatever was there (a new counter).
_CREATE = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'l', ARGV[2], 'c', ARGV[3])
return 1
"""

_SHAS = {src: hashlib.sha1(src.encode()).hexdigest() for src in (_NEXT, _SET, _RESTORE, _CREATE)}


def _client():
    return get_redis_connection(ALIAS)


def _unavailable(exc: RedisError) -> CounterStoreUnavailable:
    logger.error("counter store unavailable: %s: %s", type(exc).__name__, exc)
    return CounterStoreUnavailable(str(exc))


def _script(src: str, keys: list[str], args: list) -> object:
    """One round trip: EVALSHA, or EVAL when Redis restarted and lost its script cache."""
    client = _client()
    try:
        try:
            return client.evalsha(_SHAS[src], len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(src, len(keys), *keys, *args)
    except RedisError as exc:
        raise _unavailable(exc) from exc


def _limit_args(raise_to: int | None) -> list[int]:
    return [] if raise_to is None else [raise_to]


def next_value(owner_id: int, name: str, step: int, *, raise_to: int | None = None) -> State:
    """Add ``step`` and return the new state, in one round trip.

    Raises StateMissing, LimitReached (nothing changed; reserve ``needed`` and call again with
    ``raise_to``) or ValueOverflow (nothing changed).
    """
    reply = _script(_NEXT, [key(owner_id, name)], [step, *_limit_args(raise_to)])
    code = reply[0]
    if code == 1:
        return State(int(reply[1]), reply[2].decode())
    if code == 0:
        raise StateMissing(key(owner_id, name))
    if code == 2:
        raise ValueOverflow()
    raise LimitReached(int(reply[1]) + step)


def set_value(owner_id: int, name: str, value: int, *, raise_to: int | None = None) -> State:
    """Set the value, in one round trip. Raises StateMissing, or LimitReached above the limit."""
    reply = _script(_SET, [key(owner_id, name)], [value, *_limit_args(raise_to)])
    code = reply[0]
    if code == 1:
        return State(int(reply[1]), reply[2].decode())
    if code == 0:
        raise StateMissing(key(owner_id, name))
    raise LimitReached(value)


def get(owner_id: int, name: str) -> State:
    """The current state. Raises StateMissing."""
    try:
        value, created = _client().hmget(key(owner_id, name), "v", "c")
    except RedisError as exc:
        raise _unavailable(exc) from exc
    if value is None:
        raise StateMissing(key(owner_id, name))
    return State(int(value), created.decode())


def get_many(owner_id_names: list[tuple[int, str]]) -> list[State | None]:
    """The states of many counters in one round trip; None where Redis has no state."""
    if not owner_id_names:
        return []
    try:
        pipe = _client().pipeline(transaction=False)
        for owner_id, name in owner_id_names:
            pipe.hmget(key(owner_id, name), "v", "c")
        replies = pipe.execute()
    except RedisError as exc:
        raise _unavailable(exc) from exc
    return [None if v is None else State(int(v), c.decode()) for v, c in replies]


def create(owner_id: int, name: str, *, value: int, limit: int, created: str) -> None:
    """Write a new counter's state, replacing any left over under the same key."""
    _script(_CREATE, [key(owner_id, name)], [value, limit, created])


def restore(owner_id: int, name: str, *, value: int, created: str) -> bool:
    """Put back a forgotten counter at ``value`` (also its limit). False if it was there."""
    return _script(_RESTORE, [key(owner_id, name)], [value, created]) == 1


def delete(owner_id: int, name: str) -> None:
    try:
        _client().delete(key(owner_id, name))
    except RedisError as exc:
        raise _unavailable(exc) from exc


def ping() -> None:
    try:
        _client().ping()
    except RedisError as exc:
        raise _unavailable(exc) from exc
