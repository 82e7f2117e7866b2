"""Counters in Redis: the verbs counters/services.py calls, each one round trip.

A counter is one hash (incrementific/redis/keys.py), ``v`` its value, ``l`` its limit (a copy
of the SQL row's ``reserved_through`` as it was when last raised here: ``next`` never goes past
it, see counters/services.py), ``c`` its creation time as the API renders it (so reads need no
SQL) and, where the topology can fail over, ``o``: the primary that wrote it (lua/fence.lua). A
counter's script checks its caller's credential before anything else (accounts/store.py gives
what to check), so a change and its authorisation are one round trip.

Every change is one atomic server-side step (a Lua script or a single command); nothing is
read into Python, changed and written back. A missing hash is never read as zero: it means
Redis forgot the counter (or it never existed), and :class:`StateMissing` tells the service
to restore it from SQL.

Lua numbers are doubles, exact only below 2**53, so the scripts never do arithmetic on
values: HINCRBY adds exactly in 64 bits (and refuses to overflow), and comparisons are done
on the decimal strings.
"""

from datetime import date
from typing import NamedTuple

from django.conf import settings

from accounts.caller import Caller
from accounts.store import REFUSALS, KeyEntry, RevocationUnknown, TokenRev, TokenRevoked, gate
from counters.series import PLAIN, Series
from incrementific import metrics, rates
from incrementific.idempotency import IdempotencyKeyInProgress, IdempotencyKeyReused, Idempotent
from incrementific.redis import (
    CounterStoreUnavailable,  # noqa: F401  (every verb's one failure, named here too)
    client,
    fenced,
    guarded,
    keys,
    run,
    scripts,
)
from incrementific.redis.pages import read_on_primaries
from incrementific.redis.replies import Reply


class StateMissing(Exception):
    """Redis holds no state for this counter that this primary wrote: it forgot it, it never
    held it (a failover), or the counter does not exist. ``primary``: the primary that said so
    ('' on a single server)."""

    def __init__(self, primary: str):
        super().__init__(primary)
        self.primary = primary


class LimitReached(Exception):
    """The change would pass the counter's reserved limit (a series: its ``period``'s); reserve
    more, for ``primary`` (the primary whose limit it is, '' on a single server), and try again."""

    def __init__(self, needed: int, primary: str, period: str | None = None):
        super().__init__(needed, primary, period)
        self.needed = needed
        self.primary = primary
        self.period = period


class SettingsDiffer(Exception):
    """The counter's series settings are not the ones the call was made with (this process had
    not learnt them, or they changed): nothing changed; here are the counter's own."""

    def __init__(self, series: Series):
        super().__init__(series)
        self.series = series


class ValueOverflow(Exception):
    """The change would take the value past 2**63-1."""


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
    # A series' settings, and the document's date the value is of (its period's).
    series: Series = PLAIN
    day: date | None = None

    @property
    def period(self) -> str | None:
        return None if self.day is None else self.series.period(self.day)

    @property
    def formatted(self) -> str:
        return str(self.value) if self.series.format is None else self.series.render(self.value, self.day)


def _series_args(series: Series, day: date | None) -> tuple[list[str], str | None]:
    """(ARGV[14] to ARGV[16], the period) for a call on a counter taken to be ``series``, for the
    document's date ``day``; none for a plain counter (its day and period are never looked at)."""
    encoded = series.encoded()
    if not encoded:
        return [], None
    period = series.period(day)
    return [encoded, period or "", day.isoformat()], period


def _rate(owner_id: int, counted: bool) -> tuple[list[str], list, int]:
    """(extra keys, extra args, retry-after) for counting this call against the owner's rate."""
    rule = rates.parse(settings.COUNTER_RATE_LIMIT) if counted else None
    if rule is None:
        return [], ["", ""], 0
    limit, seconds = rule
    number, retry_after = rates.window(seconds)
    return [keys.rate(owner_id, number)], [limit, seconds + 1], retry_after


# An IntEnum member read from its class costs a metaclass __getattr__ (60 ns): the steady answer's
# code is compared as a plain int.
_DONE = int(Reply.DONE)


def _change(
    script: scripts.Script,
    action: str,
    owner_id: int,
    name: str,
    amount: int,
    raise_to: int | None,
    counted: bool,
    caller: Caller | None,
    idempotent: Idempotent | None = None,
    change: str | None = None,
    series: Series = PLAIN,
    day: date | None = None,
):
    # The scripts' KEYS and ARGV (lua/gate.lua) come in fixed places; a part that the call does
    # not use and that no other follows is left off, so the steady call sends no padding.
    series_args, period = _series_args(series, day) if series is not PLAIN else ((), None)
    rate_keys, rate_args, retry_after = _rate(owner_id, counted)
    check_key, check_args = (
        gate(owner_id, None, action, name) if caller is None else caller.gate(owner_id, action, name)
    )
    keys_ = [keys.counter(owner_id, name), check_key, *rate_keys]
    args = [amount, "" if raise_to is None else raise_to, *rate_args, *check_args]
    if idempotent is not None or change is not None or series_args:  # KEYS[4], ARGV[10] to ARGV[12]
        keys_ += [keys_[0]] * (3 - len(keys_))  # KEYS[3], the rate window's place: unused
        keys_.append(keys_[0] if idempotent is None else keys.idempotency(owner_id, idempotent.key))
        args += [""] * (9 - len(args))
        args += ["", "", ""] if idempotent is None else [idempotent.fingerprint, idempotent.attempt, idempotent.seconds]
    if change is not None:  # KEYS[5] and ARGV[13] (set only)
        keys_.append(keys.changes(owner_id))
        args.append(change)
    if series_args:  # ARGV[14] to ARGV[16]
        args += [""] * (13 - len(args))
        args += series_args
    reply = run(script, keys_, args)
    code = reply[0]
    if code == _DONE:
        if series_args:
            return State(int(reply[1]), reply[2].decode(), reply[3] == 1, series=series, day=day)
        return State(int(reply[1]), reply[2].decode(), reply[3] == 1)
    if code == Reply.REPLAYED:
        kept_day = reply[3].decode()  # the date the first answer was of (a series'), and the settings now
        return State(
            int(reply[1]),
            reply[2].decode(),
            replayed=True,
            series=Series.decode(reply[4].decode()),
            day=date.fromisoformat(kept_day) if kept_day else None,
        )
    if code == Reply.MISSING:
        raise StateMissing(reply[1].decode())
    if code == Reply.LIMIT_REACHED:
        raise LimitReached(int(reply[1]), reply[2].decode(), period)
    if code == Reply.SETTINGS_DIFFER:
        raise SettingsDiffer(Series.decode(reply[1].decode()))
    if code == Reply.OVERFLOW:
        raise ValueOverflow()
    if code == Reply.OVER_RATE:
        metrics.throttled("counter_rate")
        raise RateLimited(retry_after)
    if code == Reply.IDEMPOTENCY_KEY_REUSED:
        raise IdempotencyKeyReused()
    if code == Reply.IDEMPOTENCY_KEY_IN_PROGRESS:
        raise IdempotencyKeyInProgress()
    raise REFUSALS[code]()


# The three calls below check ``caller``'s credential (Caller.gate; nothing when None) and
# count the call against the owner's COUNTER_RATE_LIMIT when ``counted`` (a retry of the same
# request is not), before anything else; refused, they raise TokenRevoked, ApiKeyUnknown, ApiKeyOutOfScope or
# RateLimited, and nothing changed. A counter this primary holds no state of is StateMissing.
# ``series``: the settings the caller takes the counter to have (counters/series.known), and
# ``day`` the document's date (required for a series): the value is the period's of that day.
# Settings that are not the counter's raise SettingsDiffer, with the counter's own.


def next_value(
    owner_id: int,
    name: str,
    step: int,
    *,
    raise_to: int | None = None,
    counted: bool = True,
    caller: Caller | None = None,
    idempotent: Idempotent | None = None,
    series: Series = PLAIN,
    day: date | None = None,
) -> State:
    """Add ``step`` and return the new state, in one round trip. Raises LimitReached (nothing
    changed; reserve its ``needed`` and call again with ``raise_to``) or ValueOverflow. With
    ``idempotent``, a request that made its change already gets its answer again (``replayed``)."""
    try:
        return _change(
            scripts.NEXT, "next", owner_id, name, step, raise_to, counted, caller, idempotent, None, series, day
        )
    except LimitReached as exc:
        raise LimitReached(exc.needed + step, exc.primary, exc.period) from None  # the script says the value


def set_value(
    owner_id: int,
    name: str,
    value: int,
    *,
    raise_to: int | None = None,
    counted: bool = True,
    caller: Caller | None = None,
    idempotent: Idempotent | None = None,
    change: str | None = None,
    series: Series = PLAIN,
    day: date | None = None,
) -> State:
    """Set the value, in one round trip. Raises LimitReached above the limit. ``change``: what to
    append to the owner's stream of changes with the old and the new value (counters/history.py)."""
    return _change(
        scripts.SET, "set", owner_id, name, value, raise_to, counted, caller, idempotent, change, series, day
    )


def get(
    owner_id: int,
    name: str,
    *,
    counted: bool = True,
    caller: Caller | None = None,
    series: Series = PLAIN,
    day: date | None = None,
) -> State:
    """The current state, in one round trip."""
    return _change(scripts.GET, "read", owner_id, name, 0, None, counted, caller, None, None, series, day)


def get_many(
    wanted: list[tuple[int, str, str | None]],
    *,
    counted_for: int | None = None,
    credential: TokenRev | None = None,
) -> list[State | None]:
    """The states of many counters, each (owner, name, the period of a series or None), in one
    round trip to each primary that holds some (a pipeline of HMGETs: one on a single server or
    Sentinel, one per shard involved on a Cluster); None where a primary holds no state of its
    own. ``counted_for``: the owner whose rate, and, with ``credential``, whose revocation mark
    this read checks (the admin checks none)."""
    if not wanted and counted_for is None:
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
    reads += [
        ("HMGET", keys.counter(owner_id, name), "v" if period is None else f"v:{period}", "c", "o")
        for owner_id, name, period in wanted
    ]
    replies = read_on_primaries(reads)
    fenced_ = fenced()
    if check_mark:
        (primary, (mark, writer)), replies = replies[0], replies[1:]
        if fenced_ and (mark is None or writer != primary):
            raise RevocationUnknown()
        if mark is not None and credential.rev < int(mark):
            raise TokenRevoked()
    if rate_keys:
        (_, used), replies = replies[0], replies[2:]
        if used > rate_args[0]:
            metrics.throttled("counter_rate")
            raise RateLimited(retry_after)
    return [
        None if c is None or (fenced_ and o != primary) else State(int(v or 0), c.decode())
        for primary, (v, c, o) in replies
    ]


def create(
    owner_id: int, name: str, *, value: int, limit: int, created: str, settings: str = "", period: str | None = None
) -> str:
    """Write a new counter's state, replacing any left over under the same key: ``value`` and
    ``limit`` are its own, or its ``period``'s (a series'). Returns the primary that holds it now
    ('' on a single server)."""
    return run(scripts.CREATE, [keys.counter(owner_id, name)], [value, limit, created, settings, period or ""]).decode()


def restore(
    owner_id: int,
    name: str,
    *,
    value: int,
    created: str,
    primary: str,
    settings: str = "",
    periods: list[tuple[str, int]] = (),
) -> tuple[bool, str]:
    """Put a counter's state on this primary at ``value`` (its row's ``reserved_through``, which
    is also its limit), and each of a series' ``periods`` at its own (name, reserved_through),
    unless it is there already and ``primary`` (the row's record of who holds the reservation)
    is this one. Never lowers a value this primary holds. Returns (restored, this primary)."""
    args = [value, created, primary, settings]
    for period, reserved in periods:
        args += [period, reserved]
    restored, me = run(scripts.RESTORE, [keys.counter(owner_id, name)], args)
    return restored == 1, me.decode()


def periods(owner_id: int, name: str, wanted: list[str]) -> list[int]:
    """The values of a series' periods (0 for one nobody took a number in), in one round trip.
    Raises StateMissing."""
    reply = run(scripts.PERIODS, [keys.counter(owner_id, name)], wanted)
    if reply[0] == Reply.MISSING:
        raise StateMissing(reply[1].decode())
    return [int(v) for v in reply[1:]]


def change_settings(owner_id: int, name: str, series: Series) -> None:
    """A series' new settings (its format), where this primary holds the counter; elsewhere a
    restore writes them from SQL."""
    run(scripts.SETTINGS, [keys.counter(owner_id, name)], [series.encoded()])


def delete(owner_id: int, name: str) -> None:
    with guarded():
        client().delete(keys.counter(owner_id, name))


# The owners' streams of changes (keys.changes), which counters/history.py moves to SQL.


def changes_pending(owner_id: int, count: int = 500) -> list[tuple[str, dict[str, str]]]:
    """The oldest ``count`` changes of the owner not moved to SQL yet: (entry id, fields)."""
    with guarded():
        entries = client().xrange(keys.changes(owner_id), count=count)
    return [(eid.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for eid, fields in entries]


def changes_moved(owner_id: int, entry_ids: list[str]) -> None:
    """These entries are in SQL now: drop them from the stream."""
    if not entry_ids:
        return
    with guarded():
        client().xdel(keys.changes(owner_id), *entry_ids)


def owners_with_changes() -> list[int]:
    """Every owner with changes in Redis not moved to SQL yet."""
    with guarded():
        found = client().scan_iter(match="ctr:*:~changes", count=1000)
        return sorted({keys.owner_of_changes(key.decode()) for key in found})
