"""The history of every change to a counter other than `next`: CounterChange rows in SQL.

A create and a delete write their row in the transaction that makes the change. A set does not:
the steady set is one Redis round trip and no SQL, so its own script appends the change (with the
old value it replaced) to the owner's stream in Redis (keys.changes), in the same atomic step as
the set; :func:`move` takes the stream's entries into SQL, each entry once (its id is kept
with the row). That happens before anything reads the history (the API, the web app, the
admin), and every HISTORY_MOVE_SECONDS (5) in the background of each process that set a
counter, so a stream stays short. What Redis loses before it is moved is lost with the set itself (a Redis
without persistence, a failover in its last moments: docs/redis-in-production.md).

`next` is not recorded: the metrics count it (incrementific/metrics.py).
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction

from accounts.caller import Caller
from accounts.models import ApiKey
from counters import store
from counters.models import CounterChange
from incrementific.logs import request_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and through which surface."""

    surface: str
    user_id: int | None = None
    key_hashed: str = ""  # an API key's, when one made it (its name is looked up when moved)
    key_prefix: str = ""

    @classmethod
    def of(cls, request, surface: str) -> "Actor":
        caller = getattr(request, "auth", None)  # DRF's requests: accounts.caller.Caller
        if isinstance(caller, Caller) and caller.key_hashed:
            # The owner the key names: the change it makes is checked in its own Redis call (an
            # older key that names none, by SQL now).
            owner = caller.named_owner if caller.named_owner is not None else caller.owner()
            return cls(surface, owner, caller.key_hashed, caller.key_prefix)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return cls(surface)
        return cls(surface, user.pk)

    @classmethod
    def later(cls, request, surface: str):
        """:meth:`of`, made only when asked (a gapless counter's next records it; a fast one's
        does not, and its hot path does not pay for it)."""
        return lambda: cls.of(request, surface)

    def encode(self, name: str, kind: str) -> str:
        """What a set's script appends to the stream: one string, split by :func:`_decode`."""
        at = int(time.time() * 1000)
        who = f"{self.user_id or ''}|{self.key_hashed}|{self.key_prefix}"
        return f"{name}|{kind}|{self.surface}|{who}|{at}|{_request_id()}"


SYSTEM = Actor(CounterChange.Surface.OTHER)  # a management command, a shell


def record(
    *,
    owner_id: int,
    name: str,
    kind: str,
    old: int | None,
    new: int | None,
    actor: Actor,
    period: str = "",
    old_format: str = "",
    new_format: str = "",
) -> None:
    """A create's, a delete's or a format change's row, in the caller's transaction."""
    CounterChange.objects.create(
        owner_id=owner_id,
        counter=name,
        kind=kind,
        period=period,
        old_value=old,
        new_value=new,
        old_format=old_format,
        new_format=new_format,
        actor_id=actor.user_id,
        api_key_name=_key_names([actor.key_hashed]).get(actor.key_hashed, ""),
        api_key_prefix=actor.key_prefix,
        surface=actor.surface,
        at=datetime.now(UTC),
        request_id=_request_id(),
    )


def _request_id() -> str:
    rid = request_id.get()
    return "" if rid == "-" else rid  # "-": not serving a request (a command, a test's client)


def request_id_now() -> str:
    """The request's X-Request-ID ('' outside a request), for a row written in its transaction."""
    return _request_id()


def key_name(hashed: str) -> str:
    """An API key's name by its hash ('' for none, or a key deleted since)."""
    return _key_names([hashed]).get(hashed, "") if hashed else ""


def _key_names(hashed: list[str]) -> dict[str, str]:
    wanted = {h for h in hashed if h}
    if not wanted:
        return {}
    return dict(ApiKey.objects.filter(hashed__in=wanted).values_list("hashed", "name"))


def _decode(owner_id: int, entry_id: str, fields: dict[str, str]) -> tuple[CounterChange, str]:
    name, kind, surface, user_id, hashed, prefix, at, rid = fields["c"].split("|", 7)
    row = CounterChange(
        owner_id=owner_id,
        counter=name,
        kind=kind,
        period=fields.get("p", ""),
        old_value=int(fields["old"]),
        new_value=int(fields["new"]),
        actor_id=int(user_id) if user_id else None,
        api_key_prefix=prefix,
        surface=surface,
        at=datetime.fromtimestamp(int(at) / 1000, UTC),
        request_id=rid,
        stream_id=entry_id,
    )
    return row, hashed


def move(owner_id: int) -> int:
    """Take the owner's sets from Redis into SQL; returns how many. Raises
    CounterStoreUnavailable when Redis does not answer (what is there stays there)."""
    moved = 0
    while entries := store.changes_pending(owner_id):
        decoded = [_decode(owner_id, entry_id, fields) for entry_id, fields in entries]
        names = _key_names([hashed for _, hashed in decoded])
        rows = []
        for row, hashed in decoded:
            row.api_key_name = names.get(hashed, "")
            rows.append(row)
        with transaction.atomic():
            # An entry moved before (the process died before it was dropped) is skipped.
            CounterChange.objects.bulk_create(rows, ignore_conflicts=True)
        store.changes_moved(owner_id, [entry_id for entry_id, _ in entries])
        moved += len(rows)
    return moved


def move_pending(owner_id: int) -> None:
    """Move the owner's sets if this process appended any not moved yet (no round trip else)."""
    if mover.pending(owner_id):
        move(owner_id)


def move_all() -> int:
    return sum(move(owner_id) for owner_id in store.owners_with_changes())


class _Mover:
    """Each process that sets a counter moves its owners' streams every MOVE_SECONDS."""

    def __init__(self):
        self.lock = threading.Lock()
        self.owners: set[int] = set()
        self.pid = 0

    def set_by(self, owner_id: int) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.pid, self.owners = os.getpid(), set()
                if settings.HISTORY_MOVE_SECONDS:
                    threading.Thread(target=self.run, name="history-move", daemon=True).start()
            self.owners.add(owner_id)

    def pending(self, owner_id: int) -> bool:
        with self.lock:
            return self.pid == os.getpid() and owner_id in self.owners

    def run(self) -> None:
        while True:
            time.sleep(settings.HISTORY_MOVE_SECONDS)
            with self.lock:
                owners, self.owners = self.owners, set()
            try:
                for owner_id in owners:
                    move(owner_id)
            except Exception:  # Redis or SQL is down: the streams wait, and are tried again
                logger.warning("could not move the history of sets to SQL; it waits in Redis", exc_info=True)
                with self.lock:
                    self.owners |= owners
            finally:
                db_connection.close()  # this thread's own connection


mover = _Mover()
