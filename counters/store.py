"""The only module that speaks Redis.

Layout: one hash per counter at ``ctr:{u<owner_id>}:<name>`` (see :func:`key`), with fields

* ``v``: the current value, a decimal integer from 0 to 2**63-1;
* ``l``: the limit, a copy of the counter's SQL ``reserved_through`` as it was when last
  raised here; ``next`` never goes past it (see counters/services.py for why);
* ``c``: the creation time as the API renders it, so reads need no SQL.

Beside them, in the same hash tag (one Cluster slot, so one script can touch them all), the
owner's keys named with ``~``, which no counter name contains: the revocation mark of their
access tokens (:func:`revocation_key`), their rate window (:func:`rate_key`) and the entries of
their API keys (:func:`api_key_entry`). A counter's script checks its caller's credential
before anything else, so a change and its authorisation are one round trip.

Every change is one atomic server-side step (a Lua script or a single command); nothing is
read into Python, changed and written back. A missing hash is never read as zero: it means
Redis forgot the counter (or it never existed), and :class:`StateMissing` tells the service
to restore it from SQL.

Lua numbers are doubles, exact only below 2**53, so the scripts never do arithmetic on
values: HINCRBY adds exactly in 64 bits (and refuses to overflow), and comparisons are done
on the decimal strings.
"""

import collections
import functools
import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis import get_redis_connection
from redis.exceptions import NoScriptError, RedisError, ResponseError

from incrementific import rates

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


class TokenRevoked(Exception):
    """The caller's access token was issued before its user's tokens were revoked."""


class ApiKeyUnknown(Exception):
    """Redis holds no entry for the caller's API key in its owner's slot: the key is not valid
    for that owner, or Redis forgot the entry. Nothing changed; the caller checks the key in
    SQL (which puts the entry back) and calls again."""


class ApiKeyOutOfScope(Exception):
    """The caller's API key is valid, but not for this action on this counter; nothing changed."""


class RateLimited(Exception):
    """The owner used up COUNTER_RATE_LIMIT for this window; nothing changed."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class State(NamedTuple):  # not a frozen dataclass: built on every request, this is half the cost
    value: int
    created: str
    # The caller's API key was last recorded as used more than KEY_TOUCH_SECONDS ago, and now
    # is in Redis: the caller should record the use in SQL too.
    key_touched: bool = False
    # The answer an earlier request with the same Idempotency-Key was given; nothing changed.
    replayed: bool = False


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before for another request; nothing changed."""


class IdempotencyKeyInProgress(Exception):
    """The first request with this Idempotency-Key is still going on; nothing changed."""


@dataclass(frozen=True)
class Idempotent:
    """A change sent with an Idempotency-Key: its record is kept for ``seconds`` in the owner's
    slot (see :func:`idempotency_key`), checked and written by the counter's own script."""

    key: str  # the client's key
    fingerprint: str  # what the request asked for (method, path, its input)
    seconds: int
    # This request's own: the attempts that one request makes (after a reservation or a restore)
    # go on where the first left off; another request with the same key waits (409).
    attempt: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass(frozen=True)
class TokenRev:
    """The caller holds an access token with this `rev` claim: refused when the owner's
    revocation mark is above it (see :func:`revocation_key`)."""

    rev: int


@dataclass(frozen=True)
class KeyEntry:
    """The caller holds an API key with this SHA-256 that names the owner but was not checked
    yet: refused (ApiKeyUnknown) unless its entry is in the owner's slot (see
    :func:`api_key_entry`)."""

    hashed: str


# What a change or a read checks about its caller, in its own round trip. None: nothing (a
# session, the admin, a key already checked).
Credential = TokenRev | KeyEntry | None

# An API key's last use is written (to its Redis entry, and by the caller to SQL) at most this
# often, so a busy key costs no write per request.
KEY_TOUCH_SECONDS = 60


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
  if reserved ~= '' and above(reserved, limit) then
    redis.call('HSET', KEYS[1], 'l', reserved)
    return reserved
  end
  return limit
end
-- Who calls, checked before anything else is read or changed. ARGV[5] says what to check:
--   ''       nothing (a session, the admin, an API key checked already);
--   'key'    KEYS[2] is the caller's API key's entry in the owner's slot, and must exist and not
--            have expired; its scope (accounts/keystore.py) must allow the action ARGV[8] on the
--            counter ARGV[9]. Its last use is set to ARGV[6] (now) when it is ARGV[7] seconds old
--            or more;
--   a number an access token's rev; KEYS[2] is the owner's revocation mark.
-- -> false, or the reply's refusal code: 5 token revoked, 6 API key unknown here (or expired:
--    SQL answers for it), 7 outside the key's scope.
local touched = 0
local function refused()
  if ARGV[5] == '' then return false end
  if ARGV[5] == 'key' then
    local entry = redis.call('HMGET', KEYS[2], 't', 'x', 'a', 's', 'n:' .. ARGV[9])
    local used = entry[1]
    if not used then return 6 end
    if entry[2] and tonumber(ARGV[6]) >= tonumber(entry[2]) then return 6 end
    if entry[3] and not string.find(entry[3], ',' .. ARGV[8] .. ',', 1, true) then return 7 end
    if entry[4] and not entry[5] then return 7 end
    if tonumber(ARGV[6]) - tonumber(used) >= tonumber(ARGV[7]) then
      redis.call('HSET', KEYS[2], 't', ARGV[6])
      touched = 1
    end
    return false
  end
  local mark = redis.call('GET', KEYS[2])
  if mark ~= false and tonumber(ARGV[5]) < tonumber(mark) then return 5 end
  return false
end
local function over_rate()  -- KEYS[3], when ARGV[3] is a limit: the owner's rate window
  if ARGV[3] == '' then return false end
  local used = redis.call('INCR', KEYS[3])
  if used == 1 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
  return used > tonumber(ARGV[3])
end
local function gate()  -- every script's first step: nil to go on, or the reply that refuses
  local code = refused()
  if code then return {code} end
  if over_rate() then return {4} end
  return nil
end
-- An Idempotency-Key's record (see idempotency_key()), when KEYS[4] is given: ARGV[10] is the
-- request's fingerprint, ARGV[11] this attempt's own id, ARGV[12] how long a record is kept.
-- A record holds f (the fingerprint) and either the answer (v, c) or, while its attempt is
-- still going on outside Redis (a reservation, a restore), p (the attempt's id).
-- -> nil to go on, or {8} key reused for another request | {9, value, created} the answer
--    already given | {10} the first attempt is still going on
local function remembered()
  if not KEYS[4] then return nil end
  local record = redis.call('HMGET', KEYS[4], 'f', 'v', 'c', 'p')
  if not record[1] then return nil end
  if record[1] ~= ARGV[10] then return {8} end
  if record[2] then return {9, record[2], record[3]} end
  if record[4] ~= ARGV[11] then return {10} end
  return nil
end
local function remember(value, created)  -- the change is made: keep its answer
  if not KEYS[4] then return end
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[4], 'f', ARGV[10], 'v', value, 'c', created)
  redis.call('EXPIRE', KEYS[4], ARGV[12])
end
local function hold()  -- the attempt goes on outside Redis: a retry meanwhile waits (409)
  if not KEYS[4] then return end
  redis.call('HSET', KEYS[4], 'f', ARGV[10], 'p', ARGV[11])
  redis.call('EXPIRE', KEYS[4], 30)
end
local function release()  -- nothing changed, and nothing is kept: the key may be used again
  if KEYS[4] then redis.call('DEL', KEYS[4]) end
end
"""

# KEYS[1] counter, KEYS[2] what proves the caller (see refused() above), KEYS[3] the rate
# window (when there is a rate, or KEYS[4]: then the counter again), KEYS[4] (optional) an
# Idempotency-Key's record; ARGV[1] step, ARGV[2] a newly reserved limit to install first or '',
# ARGV[3] and ARGV[4] the rate's limit and seconds (or ''), ARGV[5] to ARGV[9] the caller's
# check (see refused()), ARGV[10] to ARGV[12] the record's (see remembered()).
# -> {0} missing | {1, value, created, touched} | {2} overflow | {3, value} limit reached |
#    {4} over the rate | {5} token revoked | {6} API key unknown | {7} outside the key's scope |
#    {8} Idempotency-Key reused | {9, value, created} replayed | {10} Idempotency-Key in progress
_NEXT = (
    _PRELUDE
    + """
local refusal = gate() or remembered()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], 'v', 'l', 'c')
if not state[1] then hold() return {0} end
local limit = limit_in_force(state[2], ARGV[2])
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow') then release() return {2} end
  return r
end
local value = redis.call('HGET', KEYS[1], 'v')
if above(value, limit) then
  -- Past the reservation: put the exact old value back. Nothing outside this script saw it.
  redis.call('HSET', KEYS[1], 'v', state[1])
  hold()
  return {3, state[1]}
end
remember(value, state[3])
return {1, value, state[3], touched}
"""
)

# KEYS and ARGV as for _NEXT, with ARGV[1] the value.
# -> {0} missing | {1, value, created, touched} | {3} value above the limit | {4} over the rate |
#    {5} token revoked | {6} API key unknown | {7} outside the key's scope | {8}, {9} and {10}
#    as for _NEXT
_SET = (
    _PRELUDE
    + """
local refusal = gate() or remembered()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], 'l', 'c')
if not state[1] then hold() return {0} end
local limit = limit_in_force(state[1], ARGV[2])
if above(ARGV[1], limit) then hold() return {3} end
redis.call('HSET', KEYS[1], 'v', ARGV[1])
remember(ARGV[1], state[2])
return {1, ARGV[1], state[2], touched}
"""
)

# KEYS and ARGV as for _NEXT; ARGV[1] and ARGV[2] unused.
# -> {0} missing | {1, value, created, touched} | {4} over the rate | {5} token revoked |
#    {6} API key unknown | {7} outside the key's scope
_GET = (
    _PRELUDE
    + """
local refusal = gate()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], 'v', 'c')
if not state[1] then return {0} end
return {1, state[1], state[2], touched}
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


@functools.cache
def _sha(src: str) -> str:
    return hashlib.sha1(src.encode()).hexdigest()


@functools.cache
def _client():
    # One client per process: django-redis finds it through the per-thread cache handler on
    # every call (1.3% of a `next`). It is thread-safe, and its pool reconnects by itself.
    return get_redis_connection(ALIAS)


@receiver(setting_changed)
def _forget_client(setting, **kwargs):
    if setting == "CACHES":  # tests point the store at another server
        _client.cache_clear()


def _unavailable(exc: RedisError) -> CounterStoreUnavailable:
    logger.error("counter store unavailable: %s: %s", type(exc).__name__, exc)
    return CounterStoreUnavailable(str(exc))


class _Idle(NamedTuple):
    """The connections scripts use that no call holds right now (see _command)."""

    pool: object  # the client's pool, whose settings they were made with
    connections: collections.deque  # append() and pop() are atomic: no lock needed


_idle = _Idle(None, collections.deque())


def _command(*args) -> object:
    """Send one command and return its reply, on a connection of the store's own.

    What ``client.execute_command()`` does for a script, less what this project does not use
    (OpenTelemetry hooks, HIMPORT's dispatch, reply callbacks, of which scripts have none), and
    without the pool's checks when it lends a connection and takes it back (a lock, a poll of
    the socket, metrics): 9.1% of a `next`'s instructions in all (BENCHMARKS.md). A connection
    goes back idle only in step with Redis (see _send_and_read), which is what the pool's poll
    makes sure of. The retry is the client's own: the connection's Retry (settings.CACHES)
    reconnects and sends again after a connection error or a timeout, so a connection that
    Redis closed costs no error. An error reply raises as it does there (NoScriptError,
    ResponseError)."""
    idle = _idle
    pool = _client().connection_pool
    if idle.pool is not pool:  # the first call, or tests pointed the store at another server
        idle = _use_pool(pool)
    try:
        conn = idle.connections.pop()
    except IndexError:
        conn = pool.connection_class(**pool.connection_kwargs)  # as the pool makes them
    try:
        return conn.retry.call_with_retry(lambda: _send_and_read(conn, args), lambda error: conn.disconnect())
    finally:
        idle.connections.append(conn)


def _use_pool(pool) -> _Idle:
    """Start over with no idle connections, for ``pool``'s server (None: whichever is next)."""
    global _idle
    _idle = _Idle(pool, collections.deque())
    return _idle


# A forked child (a gunicorn worker) makes its own connections: the inherited sockets are the
# parent's.
os.register_at_fork(after_in_child=lambda: _use_pool(None))


def _send_and_read(conn, args: tuple) -> object:
    try:
        conn.send_command(*args)
        return conn.read_response()
    except ResponseError:
        raise  # a whole reply, read: the connection is in step
    except BaseException:
        # redis-py disconnects when sending or reading is interrupted; this covers the moment
        # between the two. A reply left unread must never be taken as the next call's.
        conn.disconnect()
        raise


def run_script(src: str, keys: list[str], args: list) -> object:
    """Run a Lua script in one round trip: EVALSHA, or EVAL when Redis restarted and lost its
    script cache. The one way this project runs a script (accounts/keystore.py uses it too)."""
    try:
        try:
            return _command("EVALSHA", _sha(src), len(keys), *keys, *args)
        except NoScriptError:
            return _command("EVAL", src, len(keys), *keys, *args)
    except RedisError as exc:
        raise _unavailable(exc) from exc


def rate_key(owner_id: int, window: int) -> str:
    """The owner's request count for one window of COUNTER_RATE_LIMIT.

    >>> rate_key(42, 29594)
    'ctr:{u42}:~rate:29594'

    In the owner's hash tag, so a script can count it beside the counter (one Cluster slot);
    `~` is not a name character, so it can never be a counter's key.
    """
    return f"ctr:{{u{owner_id}}}:~rate:{window}"


def _rate(owner_id: int, counted: bool) -> tuple[list[str], list, int]:
    """(extra keys, extra args, retry-after) for counting this call against the owner's rate."""
    rule = rates.parse(settings.COUNTER_RATE_LIMIT) if counted else None
    if rule is None:
        return [], ["", ""], 0
    limit, seconds = rule
    number, retry_after = rates.window(seconds)
    return [rate_key(owner_id, number)], [limit, seconds + 1], retry_after


def revocation_key(owner_id: int) -> str:
    """When the owner's access tokens were last revoked (epoch milliseconds), expiring with them.

    Every token carries, as its `rev` claim, this mark as it was when the token was issued (0
    if none); a token whose `rev` is below the mark was issued before the revocation. A mark
    compares milliseconds with milliseconds, so a login just after a revocation is never
    caught by it, and a later revocation always writes a larger mark.

    >>> revocation_key(42)
    'ctr:{u42}:~revoked'
    """
    return f"ctr:{{u{owner_id}}}:~revoked"


def revoke_tokens(owner_id: int, *, lifetime: int) -> None:
    """Refuse the owner's access tokens issued until now, for as long as they could live."""
    try:
        _client().set(revocation_key(owner_id), int(time.time() * 1000), ex=lifetime + 60)
    except RedisError as exc:
        raise _unavailable(exc) from exc


def revocation_mark(owner_id: int) -> int:
    """The owner's current mark (0 if none): what a token issued now carries as `rev`."""
    try:
        mark = _client().get(revocation_key(owner_id))
    except RedisError as exc:
        raise _unavailable(exc) from exc
    return int(mark or 0)


def check_not_revoked(owner_id: int, token_rev: int) -> None:
    """TokenRevoked if a token carrying ``token_rev`` was issued before the owner's mark."""
    if token_rev < revocation_mark(owner_id):
        raise TokenRevoked()


def api_key_entry(owner_id: int, hashed: str) -> str:
    """An API key's entry in its owner's slot: a hash with ``u`` (the owner) and ``t`` (last use).

    >>> api_key_entry(42, "9f86d0")
    'ctr:{u42}:~key:9f86d0'

    Beside the owner's counters, so a counter's script can check the key in the same call.
    Written and deleted by accounts/keystore.py, from SQL's rows only.
    """
    return f"ctr:{{u{owner_id}}}:~key:{hashed}"


def _check(owner_id: int, credential: Credential, action: str, name: str) -> tuple[str, list]:
    """KEYS[2] and ARGV[5] on (ARGV[6] to ARGV[9] for a key) of a script, for refused()."""
    if isinstance(credential, KeyEntry):
        entry = api_key_entry(owner_id, credential.hashed)
        return entry, ["key", int(time.time()), KEY_TOUCH_SECONDS, action, name]
    return revocation_key(owner_id), ["" if credential is None else credential.rev]


def idempotency_key(owner_id: int, client_key: str) -> str:
    """The record of an Idempotency-Key, in its owner's slot: two users' keys never meet.

    >>> idempotency_key(42, "8e03978e-40d5-43e8-bc93-6894a57f9324")
    'ctr:{u42}:~idem:238c5b6ddb487a6d063ce774c2f42b20234bfc3e2c83e16449d262be8e66f4b4'

    The client's key is hashed: it may hold any printable character, braces and colons included.
    """
    return f"ctr:{{u{owner_id}}}:~idem:{hashlib.sha256(client_key.encode()).hexdigest()}"


def _change(
    src,
    action: str,
    owner_id: int,
    name: str,
    amount: int,
    raise_to: int | None,
    counted: bool,
    credential: Credential,
    idempotent: Idempotent | None = None,
):
    rate_keys, rate_args, retry_after = _rate(owner_id, counted)
    check_key, check_args = _check(owner_id, credential, action, name)
    keys = [key(owner_id, name), check_key, *rate_keys]
    args = [amount, "" if raise_to is None else raise_to, *rate_args, *check_args]
    if idempotent is not None:  # KEYS[4] and ARGV[10] to ARGV[12], at their places
        if not rate_keys:
            keys.append(keys[0])  # KEYS[3], the rate window's place: unused without a rate
        keys.append(idempotency_key(owner_id, idempotent.key))
        args += [""] * (9 - len(args))
        args += [idempotent.fingerprint, idempotent.attempt, idempotent.seconds]
    reply = run_script(src, keys, args)
    code = reply[0]
    if code == 1:
        return State(int(reply[1]), reply[2].decode(), reply[3] == 1)
    if code == 9:
        return State(int(reply[1]), reply[2].decode(), replayed=True)
    if code == 8:
        raise IdempotencyKeyReused()
    if code == 10:
        raise IdempotencyKeyInProgress()
    if code == 0:
        raise StateMissing(key(owner_id, name))
    if code == 4:
        raise RateLimited(retry_after)
    if code == 5:
        raise TokenRevoked()
    if code == 6:
        raise ApiKeyUnknown()
    if code == 7:
        raise ApiKeyOutOfScope()
    return reply


# The three calls below check ``credential`` (see Credential) and count the call against the
# owner's COUNTER_RATE_LIMIT when ``counted`` (a retry of the same request is not), before
# anything else; refused, they raise TokenRevoked, ApiKeyUnknown, ApiKeyOutOfScope or
# RateLimited, and nothing changed. A counter Redis does not hold is StateMissing.


def next_value(
    owner_id: int,
    name: str,
    step: int,
    *,
    raise_to: int | None = None,
    counted: bool = True,
    credential: Credential = None,
    idempotent: Idempotent | None = None,
) -> State:
    """Add ``step`` and return the new state, in one round trip. Raises LimitReached (nothing
    changed; reserve ``needed`` and call again with ``raise_to``) or ValueOverflow. With
    ``idempotent``, a request that made its change already gets its answer again (``replayed``)."""
    reply = _change(_NEXT, "next", owner_id, name, step, raise_to, counted, credential, idempotent)
    if isinstance(reply, State):
        return reply
    if reply[0] == 2:
        raise ValueOverflow()
    raise LimitReached(int(reply[1]) + step)


def set_value(
    owner_id: int,
    name: str,
    value: int,
    *,
    raise_to: int | None = None,
    counted: bool = True,
    credential: Credential = None,
    idempotent: Idempotent | None = None,
) -> State:
    """Set the value, in one round trip. Raises LimitReached above the limit."""
    reply = _change(_SET, "set", owner_id, name, value, raise_to, counted, credential, idempotent)
    if isinstance(reply, State):
        return reply
    raise LimitReached(value)


def get(owner_id: int, name: str, *, counted: bool = True, credential: Credential = None) -> State:
    """The current state, in one round trip."""
    return _change(_GET, "read", owner_id, name, 0, None, counted, credential)


def get_many(
    owner_id_names: list[tuple[int, str]], *, counted_for: int | None = None, credential: TokenRev | None = None
) -> list[State | None]:
    """The states of many counters in one round trip (a pipeline of HMGETs); None where Redis
    has no state. ``counted_for``: the owner whose rate, and, with ``credential``, whose
    revocation mark this read checks (the admin checks none)."""
    if not owner_id_names and counted_for is None:
        return []
    if isinstance(credential, KeyEntry):
        raise TypeError("an API key is checked before a read of many counters")
    rate_keys, rate_args, retry_after = _rate(counted_for, True) if counted_for is not None else ([], [], 0)
    check_mark = counted_for is not None and credential is not None
    try:
        pipe = _client().pipeline(transaction=False)
        if check_mark:
            pipe.get(revocation_key(counted_for))
        if rate_keys:
            pipe.incr(rate_keys[0])
            pipe.expire(rate_keys[0], rate_args[1])
        for owner_id, name in owner_id_names:
            pipe.hmget(key(owner_id, name), "v", "c")
        replies = pipe.execute()
    except RedisError as exc:
        raise _unavailable(exc) from exc
    if check_mark:
        mark, replies = replies[0], replies[1:]
        if mark is not None and credential.rev < int(mark):
            raise TokenRevoked()
    if rate_keys:
        used, _ = replies[:2]
        replies = replies[2:]
        if used > rate_args[0]:
            raise RateLimited(retry_after)
    return [None if v is None else State(int(v), c.decode()) for v, c in replies]


def create(owner_id: int, name: str, *, value: int, limit: int, created: str) -> None:
    """Write a new counter's state, replacing any left over under the same key."""
    run_script(_CREATE, [key(owner_id, name)], [value, limit, created])


def restore(owner_id: int, name: str, *, value: int, created: str) -> bool:
    """Put back a forgotten counter at ``value`` (also its limit). False if it was there."""
    return run_script(_RESTORE, [key(owner_id, name)], [value, created]) == 1


def delete(owner_id: int, name: str) -> None:
    try:
        _client().delete(key(owner_id, name))
    except RedisError as exc:
        raise _unavailable(exc) from exc


# KEYS[1] an Idempotency-Key's record; ARGV[1] an attempt. Drops the record while it is that
# attempt's hold (the request failed: nothing is kept, and the key may be sent again).
_RELEASE = """
if redis.call('HGET', KEYS[1], 'p') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


# KEYS[1] an Idempotency-Key's record; ARGV[1] fingerprint, ARGV[2] attempt. For the changes
# that are not a counter's script (create, delete, a new API key): their answer is kept whole.
# -> {0} go on (the key is now held) | {8} reused | {9, answer} the answer kept | {10} in progress
_BEGIN = """
local record = redis.call('HMGET', KEYS[1], 'f', 'a', 'p')
if not record[1] then
  redis.call('HSET', KEYS[1], 'f', ARGV[1], 'p', ARGV[2])
  redis.call('EXPIRE', KEYS[1], 30)
  return {0}
end
if record[1] ~= ARGV[1] then return {8} end
if record[2] then return {9, record[2]} end
return {10}
"""

# KEYS[1] a record; ARGV[1] fingerprint, ARGV[2] attempt, ARGV[3] the answer, ARGV[4] seconds.
# Keeps the answer if the record is still this attempt's hold.
_FINISH = """
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'f', ARGV[1], 'a', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


def idempotency_begin(owner_id: int, idempotent: Idempotent) -> bytes | None:
    """Hold the key for this request, or the answer kept for it (bytes, as finish() was given).
    Raises IdempotencyKeyReused or IdempotencyKeyInProgress."""
    record = idempotency_key(owner_id, idempotent.key)
    reply = run_script(_BEGIN, [record], [idempotent.fingerprint, idempotent.attempt])
    if reply[0] == 8:
        raise IdempotencyKeyReused()
    if reply[0] == 10:
        raise IdempotencyKeyInProgress()
    return reply[1] if reply[0] == 9 else None


def idempotency_finish(owner_id: int, idempotent: Idempotent, answer: bytes) -> None:
    """Keep the answer of a request that held its key, for idempotent.seconds."""
    record = idempotency_key(owner_id, idempotent.key)
    run_script(_FINISH, [record], [idempotent.fingerprint, idempotent.attempt, answer, idempotent.seconds])


def release(owner_id: int, idempotent: Idempotent) -> None:
    """After a request that failed between its attempts (a 503, a 404): forget its hold."""
    run_script(_RELEASE, [idempotency_key(owner_id, idempotent.key)], [idempotent.attempt])


def ping() -> None:
    try:
        _client().ping()
    except RedisError as exc:
        raise _unavailable(exc) from exc
