"""API keys in Redis: a cache of SQL's ApiKey rows, so authenticating a key needs no SQL.

An entry is a hash with ``u`` (the user id) and ``t`` (when the key was last used, epoch
seconds); ``o``, where the store is fenced, the primary that wrote it (an entry another primary
wrote is not trusted: it may be a lagging replica's copy of a key revoked since); and the key's
scope (accounts/scopes.py) when it has one: ``x`` when it expires (epoch seconds), ``a`` the
actions it may take (``,read,next,``), and ``s`` if it is limited to some counters, with a field
``n:<name>`` for each (so that one HMGET of a counter's script asks about its counter).

A key that names its owner (``inc_<id>.…``, every key issued now) has its entry in the owner's
slot, ``ctr:{u<id>}:~key:<sha256>`` (incrementific.redis.keys.api_key_entry), where a counter's own
script can check it in the same call. Keys issued before they named their owner
have theirs at ``akey:<sha256>``. A missing entry means nothing: the caller falls back to SQL
and puts the entry back. Entries are deleted with their row, and when their user is deactivated.
"""

import math
import time
from datetime import UTC, datetime

from accounts import store
from accounts.scopes import KeyScope
from incrementific.redis import keys


def key(hashed: str, owner_id: int | None) -> str:
    """Where the entry of a key is: in its owner's slot when the key names the owner."""
    return keys.api_key_entry(owner_id, hashed)


def lookup(hashed: str, owner_id: int | None) -> tuple[int, bool, KeyScope] | None:
    """(user id, whether this use should be recorded in SQL, the key's scope), or None if not
    cached (or expired)."""
    found = store.api_key_lookup(hashed, owner_id)
    if found is None:
        return None
    fields, touched = found
    return int(fields["u"]), touched, _scope(fields)


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
    the key itself names them (then its entry goes in their slot). Replaces what was there, in
    one script: no reader sees half an entry."""
    store.api_key_remember(hashed, user_id if names_owner else None, entry_fields(user_id, scope))


def forget(keys_: list[tuple[str, int]]) -> None:
    """Drop the entries of these keys, (hashed, user id) each, wherever they are."""
    store.api_key_forget(keys_)
