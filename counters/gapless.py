"""Gapless counters: every number recorded as it is handed out, none skipped, none twice.

A fast counter takes its values in Redis and keeps only a reservation in SQL, so losing Redis
skips up to a block of numbers (counters/services.py). The law asks more of some documents:
France's and Spain's invoices must be numbered continuously, and Germany's gaps each explained.
A gapless counter's value therefore lives in SQL, and a number is handed out by the transaction
that writes its entry in the counter's log (IssuedValue): the commit is the hand-out. A number
is in the log exactly when some caller was given it; one that could not be used is voided with
a reason, and stays taken.

Redis is not on this path at all: the caller is checked in SQL (Caller.owner_in_sql), an
Idempotency-Key is kept on the number's own entry, and the counter's row lock orders the
callers. What it costs: a transaction per call, the callers of one counter one after another.

A request reaches this module by counters/services.py's routing: a process that knows the
counter is gapless (series.known) comes here first; one that does not learns it from the
counter's Redis hash (its settings say so), or, with Redis down, from SQL.
"""

import hashlib
import json
from datetime import UTC, date, datetime

from django.db import IntegrityError, connection, transaction

from accounts.caller import Caller
from counters import history, store
from counters.history import Actor
from counters.models import MAX_VALUE, Counter, CounterChange, CounterPeriod, IssuedValue
from counters.series import Series
from incrementific import idempotency

METADATA_MAX_BYTES = 2048  # a number's metadata, as compact JSON in UTF-8
REASON_MAX_LENGTH = 500
# One call records at most this many numbers: a next's step, or the numbers a set passes over
# (each voided). The transaction holds the counter's lock while it writes them; a counter that
# starts above numbers another system gave out is created at that value instead (no entries).
RECORDS_MAX = 10_000

# The 400's and 409's stable codes (docs/api.md).
NOT_GAPLESS = "not_gapless"
METADATA_INVALID = "invalid_metadata"
BELOW_ISSUED = "below_issued"
GAP_TOO_LARGE = "gap_too_large"
STEP_TOO_LARGE = "step_too_large"
ALREADY_VOIDED = "already_voided"
LOG_KEPT = "log_kept"


class NotGapless(Exception):
    """The counter is not gapless (a process took it for one, or a request asked what only a
    gapless counter has): nothing changed."""


class BelowIssued(Exception):
    """A set below a number already handed out: nothing changed."""

    def __init__(self, issued: int):
        super().__init__(issued)
        self.issued = issued


class GapTooLarge(Exception):
    """A set that would pass over more than RECORDS_MAX numbers: nothing changed."""


class StepTooLarge(Exception):
    """A next whose step would record more than RECORDS_MAX numbers: nothing changed."""


class AlreadyVoided(Exception):
    pass


class NotIssued(Exception):
    """The number was never handed out (or the counter keeps no log)."""


class LogKept(Exception):
    """A gapless counter that handed out numbers is deleted only in the admin."""


def metadata_errors(metadata) -> str | None:
    """What is wrong with a number's metadata, or None: a JSON object of at most 2 KiB."""
    if not isinstance(metadata, dict):
        return 'Must be a JSON object, such as {"invoice": "A-1043"}.'
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        return f"Must be at most {METADATA_MAX_BYTES} bytes as JSON (this is {size})."
    return None


class IsGapless(Exception):
    """The counter's Redis hash says it is gapless: nothing changed there; the call goes to SQL."""


def gapless_series(owner_id: int, name: str) -> Series | None:
    """The counter's settings if it is gapless, from SQL; None for any other (or none)."""
    row = Counter.objects.filter(owner_id=owner_id, name=name, gapless=True).first()
    return None if row is None else row.series


def _owner(owner_id: int, action: str, name: str, caller: Caller | None) -> int:
    return owner_id if caller is None else caller.owner_in_sql(action, name)


def _locked(owner_id: int, name: str) -> Counter:
    from counters.services import CounterNotFound  # the service's own errors (it imports this module)

    row = Counter.objects.select_for_update().filter(owner_id=owner_id, name=name).first()
    if row is None:
        raise CounterNotFound()
    if not row.gapless:
        raise NotGapless()
    return row


def _today(series: Series, day: date | None) -> date:
    return day if day is not None else series.today()


def _state(row: Counter, value: int, series: Series, day: date, replayed: bool = False) -> store.State:
    created = row.__dict__.get("created")  # rendered once, on the process's copy (rows)
    if created is None:
        from counters.services import rendered

        created = row.__dict__["created"] = rendered(row.created_at)
    return store.State(value, created, replayed=replayed, series=series, day=day)


def _who(actor) -> dict:
    return {
        "issued_by_id": actor.user_id,
        "api_key_name": history.key_name(actor.key_hashed),
        "api_key_prefix": actor.key_prefix,
        "surface": actor.surface,
    }


def key_hash(idempotent: idempotency.Idempotent) -> str:
    return hashlib.sha256(idempotent.key.encode()).hexdigest()


def next_numbers(
    *,
    owner_id: int,
    name: str,
    step: int = 1,
    caller: Caller | None = None,
    idempotent: idempotency.Idempotent | None = None,
    day: date | None = None,
    metadata: dict | None = None,
    actor=history.SYSTEM,
) -> store.State:
    """Hand out the next ``step`` numbers, each recorded with ``metadata``, and answer the last.
    ``actor``: who takes them, or a function that says (made only here: Actor.later).
    With ``idempotent``, a request that took its numbers already gets the same answer again
    (``replayed``): its key is on the last number's entry, written in the same transaction.

    Everything that needs no lock comes first (the caller, the counter's settings, a kept
    answer); the transaction is then one statement that locks the value's row and raises it
    (:func:`_take`), one insert of the entries, and the commit: the callers of one counter queue
    on that lock, so the less it covers, the more of them it serves (BENCHMARKS.md)."""
    if step > RECORDS_MAX:
        raise StepTooLarge()
    owner = _owner(owner_id, "next", name, caller)
    if callable(actor):
        actor = actor()
    who = _who(actor)
    row = _counter_row(owner, name)
    hashed = key_hash(idempotent) if idempotent is not None else ""
    today = _today(row.series, day)
    period = row.series.period(today)
    for _ in range(3):
        if hashed:
            kept = IssuedValue.objects.filter(counter=row, idempotency_key=hashed).first()
            if kept is not None:
                if kept.fingerprint != idempotent.fingerprint:
                    raise idempotency.IdempotencyKeyReused()
                return _state(row, kept.value, row.series, kept.day, replayed=True)
        try:
            with transaction.atomic():
                last, fmt = _take(row, period, step, with_format=True)
                series = (
                    row.series if fmt == row.format else Series.of(row.reset or None, row.timezone, fmt or None, True)
                )
                now = datetime.now(UTC)
                rid = history.request_id_now()
                _insert(
                    IssuedValue(
                        counter_id=row.pk,
                        period=period or "",
                        value=value,
                        formatted=series.render(value, today),
                        day=today,
                        issued_at=now,
                        request_id=rid,
                        metadata=metadata,
                        idempotency_key=hashed if value == last else "",
                        fingerprint=idempotent.fingerprint if hashed and value == last else "",
                        **who,
                    )
                    for value in range(last - step + 1, last + 1)
                )
            return _state(row, last, series, today)
        except IntegrityError:
            # Only a retry of the same request, racing its first attempt, can break the key's
            # uniqueness: that attempt committed, this one took nothing. Its answer, then.
            if not hashed:
                raise
        except _MadeAgain:
            rows.forget(owner, name)
            row = _counter_row(owner, name)
    raise idempotency.IdempotencyKeyInProgress()


def _take(row: Counter, period: str | None, step: int, with_format: bool = False):
    """Raise the value of ``period`` (the counter's own without a reset) by ``step`` and return
    it, in one statement that also locks the row holding it until the transaction ends. A
    period's first number makes its row. CounterOverflow past 2**63-1, CounterNotFound if the
    counter went meanwhile. ``with_format``: (the value, the counter's format as it is now)."""
    from counters.services import CounterOverflow

    quote = connection.ops.quote_name
    counters = quote(Counter._meta.db_table)
    fmt = None
    with connection.cursor() as cursor:
        if period is None:
            cursor.execute(
                f"UPDATE {counters} SET reserved_through = reserved_through + %s "
                "WHERE id = %s AND reserved_through <= %s RETURNING reserved_through, format",
                [step, row.pk, MAX_VALUE - step],
            )
            found = cursor.fetchone()
            if found is not None:
                found, fmt = found
        else:
            table = quote(CounterPeriod._meta.db_table)
            cursor.execute(
                f"INSERT INTO {table} (counter_id, period, reserved_through) VALUES (%s, %s, %s) "
                f"ON CONFLICT (counter_id, period) DO UPDATE SET reserved_through = {table}.reserved_through "
                f"+ EXCLUDED.reserved_through WHERE {table}.reserved_through <= %s RETURNING reserved_through",
                [row.pk, period, step, MAX_VALUE - step],
            )
            found = cursor.fetchone()
            if found is not None:
                found = found[0]
                if with_format:
                    cursor.execute(f"SELECT format FROM {counters} WHERE id = %s", [row.pk])
                    fmt = (cursor.fetchone() or [row.format])[0]
    if found is None:
        if not Counter.objects.filter(pk=row.pk).exists():
            raise _MadeAgain()
        raise CounterOverflow()
    return (found, fmt) if with_format else found


def _insert(entries) -> None:
    """Write log entries in as few INSERTs as the database takes (SQLite's limit on a statement's
    parameters): what bulk_create sends, without its per-call compiling (a third of a gapless
    next's time in Python). Each value is prepared by its own field, as the ORM would (JSON,
    dates), so the row is the one the ORM would write."""
    fields = [f for f in IssuedValue._meta.concrete_fields if not f.primary_key]
    entries = list(entries)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(IssuedValue._meta.db_table)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    batch = connection.ops.bulk_batch_size(fields, entries) if len(entries) > 1 else 1
    with connection.cursor() as cursor:
        for start in range(0, len(entries), batch):
            chunk = entries[start : start + batch]
            params = [f.get_db_prep_save(f.pre_save(entry, True), connection) for entry in chunk for f in fields]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}", params)


class _MadeAgain(Exception):
    """The counter's row is gone: deleted (and perhaps made again) since this process read it."""


class _Rows:
    """A process's copy of its gapless counters' rows: their id, settings and creation time never
    change (a format does, and the statement that takes a number reads it fresh). A counter
    deleted and made again has another id: the statement finds none, and the copy is dropped."""

    LIMIT = 10_000

    def __init__(self):
        self._rows: dict[tuple[int, str], Counter] = {}

    def get(self, owner_id: int, name: str) -> Counter | None:
        return self._rows.get((owner_id, name))

    def keep(self, owner_id: int, name: str, row: Counter) -> None:
        if len(self._rows) >= self.LIMIT:
            self._rows.clear()
        self._rows[(owner_id, name)] = row

    def forget(self, owner_id: int, name: str) -> None:
        self._rows.pop((owner_id, name), None)

    def clear(self) -> None:
        """A test's: its rolled-back transactions give the next test's counters the same ids."""
        self._rows.clear()


rows = _Rows()


def _counter_row(owner_id: int, name: str) -> Counter:
    """The gapless counter's row, from this process's copy or SQL. Read only: its format may be
    out of date (the statement that takes a number reads it)."""
    row = rows.get(owner_id, name)
    if row is None:
        row = _readable(owner_id, name)
        rows.keep(owner_id, name, row)
    return row


def current(*, owner_id: int, name: str, caller: Caller | None = None, day: date | None = None) -> store.State:
    """The last number handed out in ``day``'s period (0 if none)."""
    from counters.services import CounterNotFound

    owner = _owner(owner_id, "read", name, caller)
    row = Counter.objects.filter(owner_id=owner, name=name).first()
    if row is None:
        raise CounterNotFound()
    if not row.gapless:
        raise NotGapless()
    series = row.series
    today = _today(series, day)
    period = series.period(today)
    if period is None:
        return _state(row, row.reserved_through, series, today)
    value = CounterPeriod.objects.filter(counter=row, period=period).values_list("reserved_through", flat=True).first()
    return _state(row, value or 0, series, today)


def set_value(
    *,
    owner_id: int,
    name: str,
    value: int,
    caller: Caller | None = None,
    day: date | None = None,
    actor: Actor = history.SYSTEM,
    kind: str = CounterChange.Kind.SET,
) -> store.State:
    """Move the counter up to ``value``: each number passed over is recorded as voided, with the
    reason "set"; the same value changes nothing. Below a number handed out: BelowIssued."""
    owner = _owner(owner_id, "set", name, caller)
    with transaction.atomic():
        row = _locked(owner, name)
        series = row.series
        today = _today(series, day)
        period = series.period(today)
        old = _take(row, period, 0)  # the period's value, its row locked (and made) as a next does
        if value < old:
            raise BelowIssued(old)
        if value - old > RECORDS_MAX:
            raise GapTooLarge()
        if value > old:
            if period is None:
                Counter.objects.filter(pk=row.pk).update(reserved_through=value)
            else:
                CounterPeriod.objects.filter(counter=row, period=period).update(reserved_through=value)
            now = datetime.now(UTC)
            who = _who(actor)
            rid = history.request_id_now()
            IssuedValue.objects.bulk_create(
                (
                    IssuedValue(
                        counter=row,
                        period=period or "",
                        value=number,
                        formatted=series.render(number, today),
                        day=today,
                        status=IssuedValue.Status.VOIDED,
                        issued_at=now,
                        request_id=rid,
                        voided_at=now,
                        voided_by_id=actor.user_id,
                        voided_by_key_name=who["api_key_name"],
                        voided_by_key_prefix=actor.key_prefix,
                        void_reason="set",
                        **who,
                    )
                    for number in range(old + 1, value + 1)
                ),
                batch_size=1000,
            )
            history.record(owner_id=owner, name=name, kind=kind, old=old, new=value, actor=actor, period=period or "")
    return _state(row, value, series, today)


def entry(*, owner_id: int, name: str, value: int, day: date | None = None) -> IssuedValue:
    """The entry of ``value`` (a series: in ``day``'s period, default today's); NotIssued."""
    row = _readable(owner_id, name)
    period = row.series.period(_today(row.series, day))
    found = row.issued.select_related("issued_by", "voided_by").filter(period=period or "", value=value).first()
    if found is None:
        raise NotIssued()
    return found


def _readable(owner_id: int, name: str) -> Counter:
    from counters.services import CounterNotFound

    row = Counter.objects.filter(owner_id=owner_id, name=name).first()
    if row is None:
        raise CounterNotFound()
    if not row.gapless:
        raise NotGapless()
    return row


def log(*, owner_id: int, name: str, day: date | None = None, status: str | None = None):
    """The counter's log, newest first: every period's, or ``day``'s; ``status`` issued or voided."""
    row = _readable(owner_id, name)
    entries = row.issued.select_related("issued_by", "voided_by").order_by("-id")
    if day is not None:
        entries = entries.filter(period=row.series.period(day) or "")
    if status is not None:
        entries = entries.filter(status=status)
    return entries


def void(
    *, owner_id: int, name: str, value: int, reason: str, day: date | None = None, actor: Actor = history.SYSTEM
) -> IssuedValue:
    """Void a number handed out: it stays taken, and the log says who voided it, when and why.
    Under the counter's lock, as every change of its log is."""
    with transaction.atomic():
        row = _locked(owner_id, name)
        period = row.series.period(_today(row.series, day))
        found = IssuedValue.objects.filter(counter=row, period=period or "", value=value).first()
        if found is None:
            raise NotIssued()
        if found.status == IssuedValue.Status.VOIDED:
            raise AlreadyVoided()
        found.status = IssuedValue.Status.VOIDED
        found.voided_at = datetime.now(UTC)
        found.voided_by_id = actor.user_id
        found.voided_by_key_name = history.key_name(actor.key_hashed)
        found.voided_by_key_prefix = actor.key_prefix
        found.void_reason = reason
        found.save(
            update_fields=[
                "status",
                "voided_at",
                "voided_by",
                "voided_by_key_name",
                "voided_by_key_prefix",
                "void_reason",
            ]
        )
    return IssuedValue.objects.select_related("issued_by", "voided_by").get(pk=found.pk)


def values_of_periods(row: Counter, periods: list[str]) -> list[int]:
    """The last numbers of some of a gapless series' periods (0 for one with none)."""
    held = dict(CounterPeriod.objects.filter(counter=row, period__in=periods).values_list("period", "reserved_through"))
    return [held.get(period, 0) for period in periods]


def has_log(counter_id: int) -> bool:
    return IssuedValue.objects.filter(counter_id=counter_id).exists()
