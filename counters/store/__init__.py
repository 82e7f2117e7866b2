"""Redis, in one place: the verbs that counters and accounts call. Nothing else imports redis.

The package: ``connection.py`` builds the one client for the topology (a single server or
Sentinel) and holds the fast path scripts run on; ``keys.py`` names every key, with the layout;
``lua/*.lua`` are the scripts, each opening with its KEYS, ARGV and replies; ``scripts.py``
loads them. A counter is one hash, ``v`` its value, ``l`` its limit (a copy of the SQL row's
``reserved_through`` as it was when last raised here: ``next`` never goes past it, see
counters/services.py), ``c`` its creation time as the API renders it (so reads need no SQL) and,
where the topology can fail over, ``o``: the primary that wrote it (lua/fence.lua). A counter's
script checks its caller's credential before anything else, so a change and its authorisation
are one round trip.

Every change is one atomic server-side step (a Lua script or a single command); nothing is
read into Python, changed and written back. A missing hash is never read as zero: it means
Redis forgot the counter (or it never existed), and :class:`StateMissing` tells the service
to restore it from SQL.

Lua numbers are doubles, exact only below 2**53, so the scripts never do arithmetic on
values: HINCRBY adds exactly in 64 bits (and refuses to overflow), and comparisons are done
on the decimal strings.
"""

import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import redis
from django.conf import settings
from redis.exceptions import AskError, ClusterDownError, RedisClusterException, RedisError, TryAgainError

from counters.store import connection, keys, scripts
from incrementific import metrics, rates

logger = logging.getLogger(__name__)


class CounterStoreUnavailable(Exception):
    """Redis did not answer, or answered with an error: the API says 503."""


class StateMissing(Exception):
    """Redis holds no state for this counter that this primary wrote: it forgot it, it never
    held it (a failover), or the counter does not exist. ``primary``: the primary that said so
    ('' on a single server)."""

    def __init__(self, primary: str):
        super().__init__(primary)
        self.primary = primary


class LimitReached(Exception):
    """The change would pass the counter's reserved limit; reserve more, for ``primary`` (the
    primary whose limit it is, '' on a single server), and try again."""

    def __init__(self, needed: int, primary: str):
        super().__init__(needed, primary)
        self.needed = needed
        self.primary = primary


class ValueOverflow(Exception):
    """The change would take the value past 2**63-1."""


class TokenRevoked(Exception):
    """The caller's access token was issued before its user's tokens were revoked."""


class RevocationUnknown(Exception):
    """This primary holds no revocation mark of its own for the owner (fenced topologies only):
    SQL's is the truth. Nothing changed; the caller puts it back and calls again."""


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
    slot (see keys.idempotency), checked and written by the counter's own script."""

    key: str  # the client's key
    fingerprint: str  # what the request asked for (method, path, its input)
    seconds: int
    # This request's own: the attempts that one request makes (after a reservation or a restore)
    # go on where the first left off; another request with the same key waits (409).
    attempt: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass(frozen=True)
class TokenRev:
    """The caller holds an access token with this `rev` claim: refused when the owner's
    revocation mark is above it (see keys.revocation)."""

    rev: int


@dataclass(frozen=True)
class KeyEntry:
    """The caller holds an API key with this SHA-256 that names the owner but was not checked
    yet: refused (ApiKeyUnknown) unless its entry is in the owner's slot (see
    keys.api_key_entry)."""

    hashed: str


# What a change or a read checks about its caller, in its own round trip. None: nothing (a
# session, the admin, a key already checked).
Credential = TokenRev | KeyEntry | None

# An API key's last use is written (to its Redis entry, and by the caller to SQL) at most this
# often, so a busy key costs no write per request.
KEY_TOUCH_SECONDS = 60


# What redis-py raises when Redis cannot be reached or refuses. RedisCluster's own errors are no
# RedisError: a cluster none of whose seeds answers, a slot that no node serves.
REDIS_ERRORS = (RedisError, RedisClusterException)


def _unavailable(exc: Exception) -> CounterStoreUnavailable:
    metrics.error("redis", type(exc).__name__)
    # Sentinel's MasterNotFoundError ends with the repr of every Sentinel client: a screenful.
    message = str(exc).split(" : <redis.", 1)[0]
    logger.error("counter store unavailable: %s: %s", type(exc).__name__, message)
    return CounterStoreUnavailable(message)


def _run(script: scripts.Script, keys_: list[str], args: list) -> object:
    try:
        return script(keys_, args)
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


def _rate(owner_id: int, counted: bool) -> tuple[list[str], list, int]:
    """(extra keys, extra args, retry-after) for counting this call against the owner's rate."""
    rule = rates.parse(settings.COUNTER_RATE_LIMIT) if counted else None
    if rule is None:
        return [], ["", ""], 0
    limit, seconds = rule
    number, retry_after = rates.window(seconds)
    return [keys.rate(owner_id, number)], [limit, seconds + 1], retry_after


def _check(owner_id: int, credential: Credential, action: str, name: str) -> tuple[str, list]:
    """KEYS[2] and ARGV[5] on (ARGV[6] to ARGV[9] for a key) of a script, for refused()."""
    if isinstance(credential, KeyEntry):
        entry = keys.api_key_entry(owner_id, credential.hashed)
        return entry, ["key", int(time.time()), KEY_TOUCH_SECONDS, action, name]
    return keys.revocation(owner_id), ["" if credential is None else credential.rev]


def _change(
    script: scripts.Script,
    action: str,
    owner_id: int,
    name: str,
    amount: int,
    raise_to: int | None,
    counted: bool,
    credential: Credential,
    idempotent: Idempotent | None = None,
    change: str | None = None,
):
    rate_keys, rate_args, retry_after = _rate(owner_id, counted)
    check_key, check_args = _check(owner_id, credential, action, name)
    keys_ = [keys.counter(owner_id, name), check_key, *rate_keys]
    args = [amount, "" if raise_to is None else raise_to, *rate_args, *check_args]
    if idempotent is not None:  # KEYS[4] and ARGV[10] to ARGV[12], at their places
        if not rate_keys:
            keys_.append(keys_[0])  # KEYS[3], the rate window's place: unused without a rate
        keys_.append(keys.idempotency(owner_id, idempotent.key))
        args += [""] * (9 - len(args))
        args += [idempotent.fingerprint, idempotent.attempt, idempotent.seconds]
    if change is not None:  # KEYS[5] and ARGV[13], at their places (set only)
        keys_ += [keys_[0]] * (4 - len(keys_))
        keys_.append(keys.changes(owner_id))
        args += [""] * (12 - len(args))
        args.append(change)
    reply = _run(script, keys_, args)
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
        raise StateMissing(reply[1].decode())
    if code == 3:
        raise LimitReached(int(reply[1]), reply[2].decode())
    if code == 2:
        raise ValueOverflow()
    if code == 4:
        metrics.throttled("counter_rate")
        raise RateLimited(retry_after)
    if code == 5:
        raise TokenRevoked()
    if code == 6:
        raise ApiKeyUnknown()
    if code == 7:
        raise ApiKeyOutOfScope()
    if code == 11:
        raise RevocationUnknown()
    return reply


# The three calls below check ``credential`` (see Credential) and count the call against the
# owner's COUNTER_RATE_LIMIT when ``counted`` (a retry of the same request is not), before
# anything else; refused, they raise TokenRevoked, ApiKeyUnknown, ApiKeyOutOfScope or
# RateLimited, and nothing changed. A counter this primary holds no state of is StateMissing.


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
    changed; reserve its ``needed`` and call again with ``raise_to``) or ValueOverflow. With
    ``idempotent``, a request that made its change already gets its answer again (``replayed``)."""
    try:
        return _change(scripts.NEXT, "next", owner_id, name, step, raise_to, counted, credential, idempotent)
    except LimitReached as exc:
        raise LimitReached(exc.needed + step, exc.primary) from None  # the script says the value


def set_value(
    owner_id: int,
    name: str,
    value: int,
    *,
    raise_to: int | None = None,
    counted: bool = True,
    credential: Credential = None,
    idempotent: Idempotent | None = None,
    change: str | None = None,
) -> State:
    """Set the value, in one round trip. Raises LimitReached above the limit. ``change``: what to
    append to the owner's stream of changes with the old and the new value (counters/history.py)."""
    return _change(scripts.SET, "set", owner_id, name, value, raise_to, counted, credential, idempotent, change)


def get(owner_id: int, name: str, *, counted: bool = True, credential: Credential = None) -> State:
    """The current state, in one round trip."""
    return _change(scripts.GET, "read", owner_id, name, 0, None, counted, credential)


def get_many(
    owner_id_names: list[tuple[int, str]], *, counted_for: int | None = None, credential: TokenRev | None = None
) -> list[State | None]:
    """The states of many counters, in one round trip to each primary that holds some (a
    pipeline of HMGETs: one on a single server or Sentinel, one per shard involved on a
    Cluster); None where a primary holds no state of its own. ``counted_for``: the owner whose
    rate, and, with ``credential``, whose revocation mark this read checks (the admin checks none)."""
    if not owner_id_names and counted_for is None:
        return []
    if isinstance(credential, KeyEntry):
        raise TypeError("an API key is checked before a read of many counters")
    rate_keys, rate_args, retry_after = _rate(counted_for, True) if counted_for is not None else ([], [], 0)
    check_mark = counted_for is not None and credential is not None
    reads: list[tuple] = []  # (command, key, *args), each answered with (its primary, its reply)
    if check_mark:
        reads.append(("HMGET", keys.revocation(counted_for), "m", "o"))
    if rate_keys:
        reads.append(("INCR", rate_keys[0]))
        reads.append(("EXPIRE", rate_keys[0], rate_args[1]))
    reads += [("HMGET", keys.counter(owner_id, name), "v", "c", "o") for owner_id, name in owner_id_names]
    try:
        replies = _read_on_primaries(reads)
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc
    fenced = connection.fenced()
    if check_mark:
        (primary, (mark, writer)), replies = replies[0], replies[1:]
        if fenced and (mark is None or writer != primary):
            raise RevocationUnknown()
        if mark is not None and credential.rev < int(mark):
            raise TokenRevoked()
    if rate_keys:
        (_, used), replies = replies[0], replies[2:]
        if used > rate_args[0]:
            metrics.throttled("counter_rate")
            raise RateLimited(retry_after)
    return [
        None if v is None or (fenced and o != primary) else State(int(v), c.decode()) for primary, (v, c, o) in replies
    ]


# A read of many keys on a Cluster in the middle of a reshard or a failover: tries, and the pause
# before each try after the first (the slots are read again in between).
_READ_TRIES = 5
_READ_PAUSE_SECONDS = 0.05


def _read_on_primaries(reads: list[tuple]) -> list[tuple[bytes, object]]:
    """Run these commands on the primaries that hold their keys, one pipeline per primary, each
    led by INFO where fenced; returns (the primary's id, or b'' unfenced; the reply) for each, in
    order. A command whose primary moved or failed (MOVED, ASK, a replica, a lost connection)
    is sent again where the slots say now; the others are not (INCR counts once). A primary that
    does not answer in time fails the whole read."""
    fenced = connection.fenced()
    cluster = connection.topology() == "cluster"
    client = connection.client()
    answers: dict[int, tuple[bytes, object]] = {}
    pending = list(range(len(reads)))
    for attempt in range(_READ_TRIES):
        if attempt:
            time.sleep(_READ_PAUSE_SECONDS * attempt)
            if cluster:
                client.nodes_manager.initialize()
            else:  # a demoted primary (Sentinel): look the primary up again
                client.connection_pool.disconnect()
        groups: dict[str, tuple[object, list[int]]] = {}
        for index in pending:
            if cluster:
                node = client.nodes_manager.get_node_from_slot(client.keyslot(reads[index][1]))
                server = client.get_redis_connection(node)
                groups.setdefault(node.name, (server, []))[1].append(index)
            else:
                groups.setdefault("", (client, []))[1].append(index)
        failed: list[int] = []
        for name, (server, indices) in groups.items():
            pipe = server.pipeline(transaction=False)
            if fenced:
                pipe.info("replication")
            for index in indices:
                pipe.execute_command(*reads[index])
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.TimeoutError:
                # A node that does not answer in time is not asked again: the page is a 503
                # within REDIS_TIMEOUT_SECONDS (on a Cluster the slot map is read again first).
                if cluster:
                    with contextlib.suppress(*REDIS_ERRORS):
                        client.nodes_manager.initialize(last_failed_node_name=name)
                raise
            except redis.ConnectionError:
                failed += indices
                continue
            primary = b""
            if fenced:
                info, replies = replies[0], replies[1:]
                if isinstance(info, Exception) or info["role"] != "master":
                    failed += indices
                    continue
                primary = info["master_replid"].encode()
            for index, reply in zip(indices, replies, strict=True):
                if _redirected(reply):
                    failed.append(index)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    answers[index] = (primary, reply)
        if not failed:
            return [answers[index] for index in range(len(reads))]
        pending = sorted(failed)
    raise RedisError(f"{len(pending)} of {len(reads)} keys found no primary after {_READ_TRIES} tries")


def _redirected(reply: redis.ResponseError) -> bool:
    """MOVED, ASK (MovedError is one), TRYAGAIN, CLUSTERDOWN: the key's slot is served elsewhere,
    or not yet."""
    return isinstance(reply, AskError | TryAgainError | ClusterDownError)


def create(owner_id: int, name: str, *, value: int, limit: int, created: str) -> str:
    """Write a new counter's state, replacing any left over under the same key. Returns the
    primary that holds it now ('' on a single server)."""
    return _run(scripts.CREATE, [keys.counter(owner_id, name)], [value, limit, created]).decode()


def restore(owner_id: int, name: str, *, value: int, created: str, primary: str) -> tuple[bool, str]:
    """Put a counter's state on this primary at ``value`` (its row's ``reserved_through``, which
    is also its limit), unless it is there already and ``primary`` (the row's record of who holds
    the reservation) is this one. Never lowers a value this primary holds. Returns (restored,
    this primary)."""
    restored, me = _run(scripts.RESTORE, [keys.counter(owner_id, name)], [value, created, primary])
    return restored == 1, me.decode()


def delete(owner_id: int, name: str) -> None:
    try:
        connection.client().delete(keys.counter(owner_id, name))
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


# Access tokens: the owner's revocation mark (keys.revocation).


def revoke_tokens(owner_id: int, *, lifetime: int, mark: int | None = None) -> int:
    """Refuse the owner's access tokens issued before ``mark`` (epoch milliseconds, default now),
    for as long as they could live; a higher mark in force stays. Also how a mark read from SQL
    is put back (RevocationUnknown). Returns the mark in force."""
    mark = int(time.time() * 1000) if mark is None else mark
    return int(_run(scripts.REVOKE, [keys.revocation(owner_id)], [mark, lifetime + 60]))


def revocation_mark(owner_id: int) -> int:
    """The owner's mark in Redis (0 if none), in one round trip. Fenced, RevocationUnknown when
    this primary holds none of its own: the caller reads SQL's (accounts.models.TokenRevocation)
    and puts it back."""
    reply = _run(scripts.MARK, [keys.revocation(owner_id)], [])
    if reply[0] == 0:
        raise RevocationUnknown()
    return int(reply[1] or 0)


def check_not_revoked(owner_id: int, token_rev: int) -> None:
    """TokenRevoked if a token carrying ``token_rev`` was issued before the owner's mark."""
    if token_rev < revocation_mark(owner_id):
        raise TokenRevoked()


# API keys: entries cached from SQL's rows (accounts/keystore.py says what their fields mean).


def api_key_lookup(hashed: str, owner_id: int | None) -> tuple[dict[str, str], bool] | None:
    """(the entry's fields, whether this use should be recorded in SQL), or None: no entry this
    primary wrote, or the key expired. ``owner_id``: the owner the key names, if it does."""
    reply = _run(scripts.API_KEY_LOOKUP, [keys.api_key_entry(owner_id, hashed)], [int(time.time()), KEY_TOUCH_SECONDS])
    if reply is None:
        return None
    touched, flat = reply
    return {name.decode(): value.decode() for name, value in zip(flat[::2], flat[1::2], strict=True)}, touched == 1


def api_key_remember(hashed: str, owner_id: int | None, fields: dict[str, object]) -> None:
    """Write a key's entry (replacing what was there), where :func:`api_key_lookup` finds it."""
    flat = [item for pair in fields.items() for item in pair]
    _run(scripts.API_KEY_REMEMBER, [keys.api_key_entry(owner_id, hashed)], flat)


def api_key_forget(keys_: list[tuple[str, int]]) -> None:
    """Drop the entries of these keys, (hashed, owner id) each, wherever they are."""
    if not keys_:
        return
    try:
        pipe = connection.client().pipeline(transaction=False)
        for hashed, owner_id in keys_:
            # one DEL per entry: the two places are in different Cluster slots
            pipe.delete(keys.api_key_entry(None, hashed))
            pipe.delete(keys.api_key_entry(owner_id, hashed))
        pipe.execute()
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


# Account rate limits (accounts/ratelimit.py): fixed windows, keys.account_rate.


def rate_window_add(scope: str, ident: str, window: int, *, seconds: int) -> int:
    """Count one event in a window that lives ``seconds``; returns the window's count."""
    key = keys.account_rate(scope, ident, window)
    try:
        pipe = connection.client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, seconds)
        used, _ = pipe.execute()
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc
    return used


def rate_window_count(scope: str, ident: str, window: int) -> int:
    """A window's count, counting nothing."""
    try:
        return int(connection.client().get(keys.account_rate(scope, ident, window)) or 0)
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


# The owners' streams of changes (keys.changes), which counters/history.py moves to SQL.


def changes_pending(owner_id: int, count: int = 500) -> list[tuple[str, dict[str, str]]]:
    """The oldest ``count`` changes of the owner not moved to SQL yet: (entry id, fields)."""
    try:
        entries = connection.client().xrange(keys.changes(owner_id), count=count)
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc
    return [(eid.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for eid, fields in entries]


def changes_moved(owner_id: int, entry_ids: list[str]) -> None:
    """These entries are in SQL now: drop them from the stream."""
    if not entry_ids:
        return
    try:
        connection.client().xdel(keys.changes(owner_id), *entry_ids)
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


def owners_with_changes() -> list[int]:
    """Every owner with changes in Redis not moved to SQL yet."""
    try:
        found = connection.client().scan_iter(match="ctr:*:~changes", count=1000)
        return sorted({keys.owner_of_changes(key.decode()) for key in found})
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


# Idempotency-Key records for the changes that are not a counter's script (keys.idempotency).


def idempotency_begin(owner_id: int, idempotent: Idempotent) -> bytes | None:
    """Hold the key for this request, or the answer kept for it (bytes, as finish() was given).
    Raises IdempotencyKeyReused or IdempotencyKeyInProgress."""
    record = keys.idempotency(owner_id, idempotent.key)
    reply = _run(scripts.IDEMPOTENCY_BEGIN, [record], [idempotent.fingerprint, idempotent.attempt])
    if reply[0] == 8:
        raise IdempotencyKeyReused()
    if reply[0] == 10:
        raise IdempotencyKeyInProgress()
    return reply[1] if reply[0] == 9 else None


def idempotency_finish(owner_id: int, idempotent: Idempotent, answer: bytes) -> None:
    """Keep the answer of a request that held its key, for idempotent.seconds."""
    record = keys.idempotency(owner_id, idempotent.key)
    _run(scripts.IDEMPOTENCY_FINISH, [record], [idempotent.fingerprint, idempotent.attempt, answer, idempotent.seconds])


def release(owner_id: int, idempotent: Idempotent) -> None:
    """After a request that failed between its attempts (a 503, a 404): forget its hold."""
    _run(scripts.IDEMPOTENCY_RELEASE, [keys.idempotency(owner_id, idempotent.key)], [idempotent.attempt])


def ping() -> None:
    """Raises CounterStoreUnavailable unless the primary answers (on a Cluster: every primary,
    so that /readyz says so while one shard has none)."""
    try:
        client = connection.client()
        if connection.topology() == "cluster":
            client.ping(target_nodes=client.PRIMARIES)
        else:
            client.ping()
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


@dataclass(frozen=True)
class Server:
    """One server the counters depend on, as it describes itself (CONFIG GET, INFO)."""

    address: str
    role: str  # master | slave
    config: dict[str, str]


@dataclass(frozen=True)
class Shard:
    """A primary and its replicas: the whole store, but on a Cluster, where it is one of several."""

    primary: Server
    replicas: list[Server]
    slots: int = 16384  # how many of the Cluster's slots it serves


@dataclass(frozen=True)
class Report:
    """What manage.py check reports (counters/checks.py): the topology, and the servers in it."""

    topology: str  # single | sentinel | cluster
    shards: list[Shard]  # one but on a Cluster
    sentinels: int  # how many of REDIS_SENTINELS answered (0 elsewhere)
    sentinels_named: int  # how many REDIS_SENTINELS names
    master_name: str
    counter_ttls: list[tuple[str, int]]  # a sample of counter keys and their TTLs (-1: none)

    @property
    def primary(self) -> Server:
        return self.shards[0].primary

    @property
    def replicas(self) -> list[Server]:
        return self.shards[0].replicas


_CONFIG = ("appendonly", "appendfsync", "save", "maxmemory-policy", "min-replicas-to-write", "replica-read-only")


def _describe(client, address: str) -> Server:
    config = {}
    for name in _CONFIG:
        config.update(client.config_get(name))
    return Server(address, client.info("replication")["role"], config)


def inspect(ttl_sample: int) -> Report:
    """The servers behind the counters, their settings and a sample of counter TTLs. Raises
    CounterStoreUnavailable if a primary (or, under Sentinel, every Sentinel) cannot be asked."""
    try:
        client = connection.client()
        sample = [key for key, _ in zip(client.scan_iter(match="ctr:*", count=500), range(ttl_sample), strict=False)]
        pipe = client.pipeline(transaction=False)
        for key in sample:
            pipe.ttl(key)
        ttls = [(key.decode(), ttl) for key, ttl in zip(sample, pipe.execute(), strict=True)]
        if connection.topology() == "single":
            kwargs = client.connection_pool.connection_kwargs
            address = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
            return Report("single", [Shard(_describe(client, address), [])], 0, 0, "", ttls)
        if connection.topology() == "cluster":
            return Report("cluster", _cluster_shards(client), 0, 0, "", ttls)
        sentinel = connection.sentinel()
        name = settings.REDIS_SENTINEL_MASTER
        host, port = sentinel.discover_master(name)
        answering = 0
        for each in sentinel.sentinels:
            try:
                each.ping()
                answering += 1
            except REDIS_ERRORS:
                pass
        options = connection.data_options()
        replicas = []
        for replica_host, replica_port in sentinel.discover_slaves(name):
            with redis.Redis(replica_host, replica_port, socket_timeout=settings.REDIS_TIMEOUT_SECONDS, **options) as r:
                replicas.append(_describe(r, f"{replica_host}:{replica_port}"))
        primary = _describe(client, f"{host}:{port}")
        return Report("sentinel", [Shard(primary, replicas)], answering, len(sentinel.sentinels), name, ttls)
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


def _cluster_shards(client) -> list[Shard]:
    """Every primary that serves slots, with its replicas, as CLUSTER NODES tells."""
    nodes = client.execute_command("CLUSTER NODES", target_nodes=client.get_random_node())
    by_id = {node["node_id"]: address.split("@")[0] for address, node in nodes.items()}
    shards = []
    for _, node in sorted(nodes.items()):
        flags = node["flags"].split(",")
        if "master" not in flags or not node["slots"] or "fail" in flags:
            continue
        replicas = [
            a.split("@")[0] for a, n in nodes.items() if n["master_id"] == node["node_id"] and "fail" not in n["flags"]
        ]
        slots = sum(int(r[-1]) - int(r[0]) + 1 for r in node["slots"])  # a lone slot is [n]
        shards.append(Shard(_describe_node(by_id[node["node_id"]]), [_describe_node(r) for r in replicas], slots))
    return shards


def _describe_node(address: str) -> Server:
    host, _, port = address.rpartition(":")
    options = connection.data_options()
    options.pop("db", None)
    with redis.Redis(host, int(port), socket_timeout=settings.REDIS_TIMEOUT_SECONDS, **options) as r:
        return _describe(r, address)


# OpenID Connect subjects (accounts/oidc.py): which user a provider's token names.

# A subject's entry lives this long after its last write: a user deleted while Redis was down
# leaves one behind for a day at most (the service then finds no counters of theirs).
IDENTITY_SECONDS = 86400


def identity_lookup(issuer: str, subject: str) -> int | None:
    """The user id remembered for a provider's subject, or None: look it up in SQL."""
    try:
        found = connection.command("GET", keys.provider_identity(issuer, subject))  # the fast path
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc
    return None if found is None else int(found)


def identity_remember(issuer: str, subject: str, user_id: int) -> None:
    try:
        connection.client().set(keys.provider_identity(issuer, subject), user_id, ex=IDENTITY_SECONDS)
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc


def identity_forget(pairs: list[tuple[str, str]]) -> None:
    """Drop the entries of these (issuer, subject) pairs: their user is gone."""
    if not pairs:
        return
    try:
        pipe = connection.client().pipeline(transaction=False)
        for issuer, subject in pairs:
            pipe.delete(keys.provider_identity(issuer, subject))  # each in its own slot
        pipe.execute()
    except REDIS_ERRORS as exc:
        raise _unavailable(exc) from exc
