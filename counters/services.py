"""Counter operations: the only code that changes counters.

Values live in Redis (store.py); each counter's SQL row keeps ``reserved_through``. Two rules
keep the promise that ``next`` never hands out a value twice, whatever Redis forgets:

1. Redis never takes a counter past its limit ``l``, and ``l`` is only ever raised to a
   ``reserved_through`` that is already committed in SQL. So every value handed out or set
   is at most ``reserved_through``.
2. ``reserved_through`` only rises (``max(old, needed) + block``). When Redis has no state
   for a counter that SQL has, the state is restored at ``reserved_through``, above every
   value ever handed out: some values are skipped (about one block), none repeated.

This is PostgreSQL's own trick for sequences, which log 32 values ahead and may skip them
after a crash, never repeat them. The steady path (value within the limit) is one Redis
round trip and no SQL; one SQL write buys ``COUNTER_BLOCK_SIZE`` increments.

Because the mark only rises, a set never has to lower it, so a set within the limit is
SQL-free too, and a reservation racing with a set is harmless (max() commutes). The price: a
counter set far below its old high that then loses its Redis state resumes above that old
high rather than near the set value.

A series (counters/series.py) keeps one sequence per period, each under these two rules with
its own ``reserved_through`` (a CounterPeriod row, written by the period's first reservation).
Which period a call is in follows from the counter's settings and the document's date; a
process learns the settings from the counter's own script (series.known), so the steady call
of a series is one round trip too.

A gapless counter (counters/gapless.py) is the one exception: its value lives in SQL, and
every call on it goes there (:func:`_routed`).
"""

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from rest_framework.fields import DateTimeField

from accounts.caller import Caller
from accounts.store import ApiKeyOutOfScope, ApiKeyUnknown, RevocationUnknown, TokenRev
from counters import gapless, history, store
from counters.history import Actor
from counters.models import MAX_VALUE, Counter, CounterChange, CounterPeriod
from counters.series import PLAIN, Series, known, zone
from incrementific import idempotency, metrics

logger = logging.getLogger(__name__)

# A call needs at most a restore and a reservation; the rest is for losing races to other
# callers that used up a fresh block first (each lost attempt changes nothing). With tiny
# blocks and many workers that happens often: 8 attempts starved callers into 503s in the
# race tests (block of 3, six threads). Running out means something is wrong.
_ATTEMPTS = 64


class CounterNotFound(Exception):
    pass


class CounterAlreadyExists(Exception):
    pass


class CounterOwnerMissing(Exception):
    """The owner's account is gone or inactive (its access token outlived it)."""


class CounterLimitReached(Exception):
    """The owner has MAX_COUNTERS_PER_USER counters already."""


class CounterOverflow(Exception):
    """The change would take the value past 2**63-1; nothing changed."""


def rendered(created_at) -> str:
    """A creation time as the API shows it (also kept in Redis, so reads need no SQL)."""
    return DateTimeField().to_representation(created_at)


def _locked_row(*, owner_id: int, name: str) -> Counter:
    row = Counter.objects.select_for_update().filter(owner_id=owner_id, name=name).first()
    if row is None:
        raise CounterNotFound()
    return row


def _restore(*, owner_id: int, name: str) -> None:
    """This primary holds no state of this counter: 404 if it does not exist, else resume it.

    Under the row lock, so a concurrent delete (which holds it) cannot be undone by a restore
    that read the row before the delete committed, and a reservation cannot slip between the
    restore and the row's new ``primary``. The state resumes at ``reserved_through`` with that
    as its limit (so the next ``next`` reserves, for this primary), above every value handed out
    by any primary: none can extend a reservation that is not its own.
    """
    with transaction.atomic():
        row = _locked_row(owner_id=owner_id, name=name)
        restored, primary = store.restore(
            owner_id,
            name,
            # A gapless counter's hash holds no value (its settings send every call to SQL).
            value=0 if row.gapless else row.reserved_through,
            created=rendered(row.created_at),
            primary=row.primary,
            settings=row.series.encoded(),
            periods=list(row.periods.values_list("period", "reserved_through"))
            if row.reset and not row.gapless
            else [],
        )
        known.learn(owner_id, name, row.series)
        before = row.primary
        if before != primary:
            row.primary = primary
            row.save(update_fields=["primary"])
    if restored and row.gapless:  # its hash holds its settings only: nothing was skipped
        logger.info("gapless counter's settings put back in Redis: owner=%s name=%s", owner_id, name)
    elif restored:
        metrics.restore("takeover" if before != primary else "forgotten")
        logger.warning(
            "counter restored: owner=%s name=%s; %s, it resumes above reserved_through=%s, "
            "skipping at most one block (%s) of values, repeating none",
            owner_id, name,
            f"primary {primary} took it over from {before or 'none'}" if before != primary else "Redis had lost it",
            row.reserved_through, settings.COUNTER_BLOCK_SIZE,
        )  # fmt: skip


def _reserve(*, owner_id: int, name: str, needed: int, primary: str, period: str | None = None) -> int | None:
    """Make ``reserved_through`` (a series: its ``period``'s) at least ``needed`` (plus a block)
    for ``primary``, and commit. Returns it; or None when the row says another primary holds the
    reservation now (a failover, or a split brain): then this primary took the counter over, at
    the row's ``reserved_through``, and the call goes on from there. A period's first reservation
    writes its row, under the counter's lock, which a restore holds as it reads the periods."""
    if needed > MAX_VALUE:
        raise CounterOverflow()
    with transaction.atomic():
        row = _locked_row(owner_id=owner_id, name=name)
        if row.primary != primary:
            _restore(owner_id=owner_id, name=name)
            return None
        held = row if period is None else CounterPeriod.objects.get_or_create(counter=row, period=period)[0]
        if held.reserved_through < needed:
            held.reserved_through = min(MAX_VALUE, needed + settings.COUNTER_BLOCK_SIZE)
            held.save(update_fields=["reserved_through"])
            metrics.reservation()
    return held.reserved_through


def _with_state(
    *,
    owner_id: int,
    name: str,
    action: str,
    op: Callable[[int | None, bool, Series], store.State],
    caller: Caller | None = None,
    idempotent: idempotency.Idempotent | None = None,
) -> store.State:
    """Run a store operation, restoring forgotten state and reserving values as it asks, and
    answering the caller's checks that Redis cannot (see accounts/caller.py): an API key Redis
    forgot is checked in SQL, a revocation mark Redis forgot is put back from SQL, and the
    operation runs again (the refusal changed nothing). Only the first attempt that passes the
    caller's check counts against the owner's COUNTER_RATE_LIMIT. A request with an
    Idempotency-Key that fails between its attempts leaves nothing kept (store.release).
    ``op`` is given the series the counter is taken to be: what this process learnt of it, and
    learns again when the counter's script says otherwise."""
    try:
        raise_to = None
        counted = True
        for _ in range(_ATTEMPTS):
            series = known.get(owner_id, name)
            if series.gapless:  # learnt from a restore: its value is SQL's
                raise gapless.IsGapless()
            try:
                state = op(raise_to, counted, series)
            except store.SettingsDiffer as exc:
                known.learn(owner_id, name, exc.series)
                if exc.series.gapless:
                    raise gapless.IsGapless() from None
                raise_to, counted = None, False  # a reservation is a period's: this may be another
                continue
            except store.StateMissing:
                _restore(owner_id=owner_id, name=name)
                raise_to, counted = None, False  # reserved for another primary, perhaps: reserve again
                continue
            except store.LimitReached as exc:
                raise_to = _reserve(
                    owner_id=owner_id, name=name, needed=exc.needed, primary=exc.primary, period=exc.period
                )
                counted = False
                continue
            except store.ValueOverflow:
                raise CounterOverflow() from None
            except ApiKeyUnknown:
                caller.key_forgotten(action, name)  # SQL: the entry put back, or the 401
                continue
            except RevocationUnknown:
                caller.mark_forgotten()
                continue
            except ApiKeyOutOfScope:
                raise caller.out_of_scope(action, name) from None
            if caller is not None:
                caller.checked = True  # the script let it through
                if state.key_touched:
                    caller.key_used()
            return state
        raise store.CounterStoreUnavailable(f"no stable state for counter {owner_id}/{name}")
    except Exception:  # re-raised: whatever failed, the request's hold must not outlive it
        if idempotent is not None:
            try:
                idempotency.release(owner_id, idempotent)
            except store.CounterStoreUnavailable:
                pass  # Redis is down: the hold expires by itself, in 30 s
        raise


def _routed(owner_id: int, name: str, fast: Callable[[], store.State], slow: Callable[[], store.State]) -> store.State:
    """Run a call on a fast counter in Redis (``fast``), on a gapless one in SQL (``slow``). A
    process that knows the counter is gapless goes to SQL first; one that takes it for a fast
    counter learns otherwise from its Redis hash, or, when Redis cannot answer, from SQL: a
    gapless counter never needs Redis. ``owner_id`` here only routes: each path checks the caller."""
    if known.get(owner_id, name).gapless:
        try:
            return slow()
        except gapless.NotGapless:  # deleted and made again as a fast counter since
            known.learn(owner_id, name, PLAIN)
    try:
        return fast()
    except gapless.IsGapless:
        return slow()
    except store.CounterStoreUnavailable:
        series = gapless.gapless_series(owner_id, name)
        if series is None:
            raise
        known.learn(owner_id, name, series)
        return slow()


def _dated(given: date | None) -> Callable[[Series], date | None]:
    """For one call: the document's date on a counter taken to be a series, ``given`` or today in
    the series' time zone, the clock read once for the whole call (so that each attempt is in
    the same period); None for a plain counter."""
    now: list[datetime] = []

    def day(series: Series) -> date | None:
        if series is PLAIN:
            return None
        if given is not None:
            return given
        if not now:
            now.append(datetime.now(UTC))
        return now[0].astimezone(zone(series.timezone)).date()

    return day


def counter_create(
    *,
    owner_id: int,
    name: str,
    value: int = 0,
    series: Series = PLAIN,
    actor: Actor = history.SYSTEM,
) -> store.State:
    """Create a counter at ``value`` (a series: its current period at ``value``).

    The Redis state is written before the row commits: if Redis fails, the row rolls back and
    nothing changed. The insert comes first, so a concurrent create of the same name waits on
    the unique index and fails without touching Redis.
    """
    day = _dated(None)(series)
    period = None if day is None else series.period(day)
    with transaction.atomic():
        # Access tokens are checked without SQL, so one may outlive its user by a few minutes;
        # the foreign key would only fail at commit, as a 500.
        if not get_user_model().objects.filter(pk=owner_id, is_active=True).exists():
            raise CounterOwnerMissing()
        if Counter.objects.filter(owner_id=owner_id).count() >= settings.MAX_COUNTERS_PER_USER:
            raise CounterLimitReached()
        reserved = min(MAX_VALUE, value + settings.COUNTER_BLOCK_SIZE)
        try:
            with transaction.atomic():
                row = Counter.objects.create(
                    owner_id=owner_id,
                    name=name,
                    reserved_through=0 if period else reserved,
                    reset=series.reset or "",
                    timezone=series.timezone,
                    format=series.format or "",
                    gapless=series.gapless,
                )
        except IntegrityError:
            raise CounterAlreadyExists() from None
        if series.gapless:  # its value is in SQL, exactly (numbers up to it were another system's)
            row.reserved_through = 0 if period else value
            row.save(update_fields=["reserved_through"])
            if period and value:
                CounterPeriod.objects.create(counter=row, period=period, reserved_through=value)
        elif period and value:  # a series starts its current period at the value (moving from another system)
            CounterPeriod.objects.create(counter=row, period=period, reserved_through=reserved)
        created = rendered(row.created_at)
        primary = store.create(
            owner_id,
            name,
            value=0 if series.gapless else value if period is None or value else 0,
            limit=0 if series.gapless else reserved if period is None or value else 0,
            created=created,
            settings=series.encoded(),
            period=period if value and not series.gapless else None,
        )
        if primary:  # the reservation is this primary's (only where the store is fenced)
            row.primary = primary
            row.save(update_fields=["primary"])
        history.record(
            owner_id=owner_id,
            name=name,
            kind=CounterChange.Kind.CREATE,
            old=None,
            new=value,
            actor=actor,
            period=period or "",
        )
    known.learn(owner_id, name, series)
    metrics.operation("create")
    return store.State(value, created, series=series, day=day)


# ``caller`` below: the API's caller (accounts/caller.py), whose credential the store checks in
# the same Redis call; refused, nothing changed. None: a call the service trusts (the web app's
# session, the admin, a command), for ``owner_id``.


# ``idempotent`` below: the request's Idempotency-Key (see idempotency.Idempotent); a request that
# made its change already gets the same state again, marked ``replayed``, and changes nothing.


def counter_next(
    *,
    owner_id: int,
    name: str,
    step: int = 1,
    caller: Caller | None = None,
    idempotent: idempotency.Idempotent | None = None,
    day: date | None = None,
    metadata: dict | None = None,
    actor: Actor = history.SYSTEM,
) -> store.State:
    """Add ``step`` and return the new state. Never returns a value twice (see module doc).
    ``day``: the document's date, which picks a series' period (default: today, in its zone).
    A gapless counter records each number, with ``metadata`` (only a gapless counter takes it:
    gapless.NotGapless otherwise, nothing changed)."""

    def slow():
        return gapless.next_numbers(
            owner_id=owner_id,
            name=name,
            step=step,
            caller=caller,
            idempotent=idempotent,
            day=day,
            metadata=metadata,
            actor=actor,
        )

    if metadata is not None:
        state = slow()
    else:
        state = _routed(owner_id, name, lambda: _next_fast(owner_id, name, step, caller, idempotent, day), slow)
    _count("next", state, values=step)
    return state


def _next_fast(owner_id, name, step, caller, idempotent, day) -> store.State:
    dated = _dated(day)
    return _with_state(
        owner_id=owner_id,
        name=name,
        action="next",
        caller=caller,
        idempotent=idempotent,
        op=lambda raise_to, counted, series: store.next_value(
            owner_id,
            name,
            step,
            raise_to=raise_to,
            counted=counted,
            caller=caller,
            idempotent=idempotent,
            series=series,
            day=dated(series),
        ),
    )


def _count(kind: str, state: store.State, values: int = 0) -> None:
    if state.replayed:
        metrics.replay()  # nothing was done again
    else:
        metrics.operation(kind, values=values)


def counter_set(
    *,
    owner_id: int,
    name: str,
    value: int,
    caller: Caller | None = None,
    idempotent: idempotency.Idempotent | None = None,
    actor: Actor = history.SYSTEM,
    kind: str = CounterChange.Kind.SET,
    day: date | None = None,
) -> store.State:
    """Set the value (a series: of ``day``'s period). SQL-free when ``value`` is within the
    reservation, else one block more. The change goes to the history with its old value (and
    period), in the set's own Redis step (``kind``: set, or the admin's reset). A gapless counter
    only moves up, recording the numbers it passes over as voided (counters/gapless.py)."""

    def fast():
        change = actor.encode(name, kind)
        dated = _dated(day)
        state = _with_state(
            owner_id=owner_id,
            name=name,
            action="set",
            caller=caller,
            idempotent=idempotent,
            op=lambda raise_to, counted, series: store.set_value(
                owner_id,
                name,
                value,
                raise_to=raise_to,
                counted=counted,
                caller=caller,
                idempotent=idempotent,
                change=change,
                series=series,
                day=dated(series),
            ),
        )
        if not state.replayed:
            history.mover.set_by(owner_id)
        return state

    def slow():
        return gapless.set_value(
            owner_id=owner_id, name=name, value=value, caller=caller, day=day, actor=actor, kind=kind
        )

    state = _routed(owner_id, name, fast, slow)
    _count("set", state)
    return state


def counter_get(
    *, owner_id: int, name: str, counted: bool = True, caller: Caller | None = None, day: date | None = None
) -> store.State:
    """The counter's state (a series: ``day``'s period's; a period nobody took a number in is 0)."""

    def fast():
        dated = _dated(day)
        return _with_state(
            owner_id=owner_id,
            name=name,
            action="read",
            caller=caller,
            op=lambda _, first, series: store.get(
                owner_id, name, counted=counted and first, caller=caller, series=series, day=dated(series)
            ),
        )

    state = _routed(owner_id, name, fast, lambda: gapless.current(owner_id=owner_id, name=name, caller=caller, day=day))
    metrics.operation("read")
    return state


def counter_states(
    rows: list[Counter], *, counted_for: int | None = None, caller: Caller | None = None
) -> list[store.State]:
    """The states of many counters (a series: its current period's), read in one round trip
    (plus a restore for any lost). ``counted_for``: the user whose COUNTER_RATE_LIMIT (and, for an
    access token, whose revocation mark) the read checks; an API key is checked before
    (caller.owner())."""
    dated = _dated(None)
    wanted = []
    for row in rows:
        series = row.series
        day = dated(series)
        wanted.append((row.owner_id, row.name, None if day is None else series.period(day)))
    rev = caller.credential if caller is not None and isinstance(caller.credential, TokenRev) else None
    try:
        states = store.get_many(wanted, counted_for=counted_for, credential=rev)
    except RevocationUnknown:  # nothing was counted: the mark goes back from SQL, and again
        caller.mark_forgotten()
        states = store.get_many(wanted, counted_for=counted_for, credential=rev)
    answers = []
    for row, state in zip(rows, states, strict=True):
        series = row.series
        if row.gapless:  # its value is in SQL (its Redis hash holds none)
            state = gapless.current(owner_id=row.owner_id, name=row.name, day=dated(series))
        elif state is None:
            state = counter_get(owner_id=row.owner_id, name=row.name, counted=False, day=dated(series))
        answers.append(state._replace(series=series, day=dated(series)))
    return answers


def counter_settings(*, owner_id: int, name: str) -> Series:
    """The counter's settings, from SQL (what a set that names them is checked against)."""
    row = Counter.objects.filter(owner_id=owner_id, name=name).only("reset", "timezone", "format", "gapless").first()
    if row is None:
        raise CounterNotFound()
    return row.series


def counter_change_format(
    *, owner_id: int, name: str, format: str | None, actor: Actor = history.SYSTEM, day: date | None = None
) -> store.State:
    """Give the counter a new ``format`` (None: the value alone). Its reset and time zone are fixed:
    a number already handed out keeps its period. In SQL and in the counter's Redis hash, under
    the row's lock, so that a restore cannot put the old one back."""
    with transaction.atomic():
        row = _locked_row(owner_id=owner_id, name=name)
        old = row.format or None
        row.format = format or ""
        row.save(update_fields=["format"])
        store.change_settings(owner_id, name, row.series)
        if old != format:
            history.record(
                owner_id=owner_id,
                name=name,
                kind=CounterChange.Kind.FORMAT,
                old=None,
                new=None,
                actor=actor,
                old_format=old or "",
                new_format=format or "",
            )
    known.learn(owner_id, name, row.series)
    return counter_get(owner_id=owner_id, name=name, counted=False, day=day)


def counter_periods(*, owner_id: int, name: str, periods: list[str]) -> list[int]:
    """The values of some of a series' periods (0 for one nobody took a number in)."""
    row = Counter.objects.filter(owner_id=owner_id, name=name, gapless=True).first()
    if row is not None:
        return gapless.values_of_periods(row, periods)
    for _ in range(_ATTEMPTS):
        try:
            return store.periods(owner_id, name, periods)
        except store.StateMissing:
            _restore(owner_id=owner_id, name=name)
    raise store.CounterStoreUnavailable(f"no stable state for counter {owner_id}/{name}")


def counter_delete(*, owner_id: int, name: str, actor: Actor = history.SYSTEM, keep_log: bool = True) -> None:
    """Delete a counter; its Redis state goes in the same transaction (counters/signals.py), and
    so does the history's row, with the last value Redis held (None if it held none). A gapless
    counter that handed out numbers is refused (gapless.LogKept), unless ``keep_log`` is False
    (the admin): its log goes with it."""
    series = counter_settings(owner_id=owner_id, name=name)
    day = _dated(None)(series)
    period = None if day is None else series.period(day)
    if series.gapless:
        last = gapless.current(owner_id=owner_id, name=name, day=day)
    else:
        [last] = store.get_many([(owner_id, name, period)])
    with transaction.atomic():
        if series.gapless and keep_log:
            row = _locked_row(owner_id=owner_id, name=name)
            if gapless.has_log(row.pk):
                raise gapless.LogKept()
        deleted, _ = Counter.objects.filter(owner_id=owner_id, name=name).delete()
        if deleted:
            old = None if last is None else last.value
            history.record(
                owner_id=owner_id,
                name=name,
                kind=CounterChange.Kind.DELETE,
                old=old,
                new=None,
                actor=actor,
                period=period or "",
            )
    known.learn(owner_id, name, PLAIN)
    if not deleted:
        raise CounterNotFound()
    metrics.operation("delete")
