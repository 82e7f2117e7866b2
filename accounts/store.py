"""Accounts' data in Redis: revocation marks, API-key entries, rate windows and provider
identities. The keys are named in incrementific/redis/keys.py, with the slot each lands in.

A counter's own script checks the caller too (lua/gate.lua): :class:`accounts.caller.Caller`
gives it the credential to check, and the refusals below come back from there as well.
"""

import time
from dataclasses import dataclass

from incrementific.redis import client, command, guarded, keys, run, scripts
from incrementific.redis.replies import Reply


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


# What a counter's script checks about its caller, in its own round trip. None: nothing (a
# session, the admin, a key already checked).
Credential = TokenRev | KeyEntry | None


def gate(owner_id: int, credential: Credential, action: str, name: str) -> tuple[str, list]:
    """What a counter's script (lua/gate.lua, refused()) is given to check its caller: KEYS[2],
    and ARGV[5] on (ARGV[6] to ARGV[9] for an API key)."""
    if isinstance(credential, KeyEntry):
        entry = keys.api_key_entry(owner_id, credential.hashed)
        return entry, ["key", int(time.time()), KEY_TOUCH_SECONDS, action, name]
    return keys.revocation(owner_id), ["" if credential is None else credential.rev]


# Why a counter's script refused its caller (lua/gate.lua); nothing changed.
REFUSALS = {
    Reply.TOKEN_REVOKED: TokenRevoked,
    Reply.API_KEY_UNKNOWN: ApiKeyUnknown,
    Reply.OUT_OF_SCOPE: ApiKeyOutOfScope,
    Reply.REVOCATION_UNKNOWN: RevocationUnknown,
}


# An API key's last use is written (to its Redis entry, and by the caller to SQL) at most this
# often, so a busy key costs no write per request.
KEY_TOUCH_SECONDS = 60


# Access tokens: the owner's revocation mark (keys.revocation).


def revoke_tokens(owner_id: int, *, lifetime: int, mark: int | None = None) -> int:
    """Refuse the owner's access tokens issued before ``mark`` (epoch milliseconds, default now),
    for as long as they could live; a higher mark in force stays. Also how a mark read from SQL
    is put back (RevocationUnknown). Returns the mark in force."""
    mark = int(time.time() * 1000) if mark is None else mark
    return int(run(scripts.REVOKE, [keys.revocation(owner_id)], [mark, lifetime + 60]))


def revocation_mark(owner_id: int) -> int:
    """The owner's mark in Redis (0 if none), in one round trip. Fenced, RevocationUnknown when
    this primary holds none of its own: the caller reads SQL's (accounts.models.TokenRevocation)
    and puts it back."""
    reply = run(scripts.MARK, [keys.revocation(owner_id)], [])
    if reply[0] == Reply.MISSING:
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
    reply = run(scripts.API_KEY_LOOKUP, [keys.api_key_entry(owner_id, hashed)], [int(time.time()), KEY_TOUCH_SECONDS])
    if reply is None:
        return None
    touched, flat = reply
    return {name.decode(): value.decode() for name, value in zip(flat[::2], flat[1::2], strict=True)}, touched == 1


def api_key_remember(hashed: str, owner_id: int | None, fields: dict[str, object]) -> None:
    """Write a key's entry (replacing what was there), where :func:`api_key_lookup` finds it."""
    flat = [item for pair in fields.items() for item in pair]
    run(scripts.API_KEY_REMEMBER, [keys.api_key_entry(owner_id, hashed)], flat)


def api_key_forget(keys_: list[tuple[str, int]]) -> None:
    """Drop the entries of these keys, (hashed, owner id) each, wherever they are."""
    if not keys_:
        return
    with guarded():
        pipe = client().pipeline(transaction=False)
        for hashed, owner_id in keys_:
            # one DEL per entry: the two places are in different Cluster slots
            pipe.delete(keys.api_key_entry(None, hashed))
            pipe.delete(keys.api_key_entry(owner_id, hashed))
        pipe.execute()


# Account rate limits (accounts/ratelimit.py): fixed windows, keys.account_rate.


def rate_window_add(scope: str, ident: str, window: int, *, seconds: int) -> int:
    """Count one event in a window that lives ``seconds``; returns the window's count."""
    key = keys.account_rate(scope, ident, window)
    with guarded():
        pipe = client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, seconds)
        used, _ = pipe.execute()
    return used


def rate_window_count(scope: str, ident: str, window: int) -> int:
    """A window's count, counting nothing."""
    with guarded():
        return int(client().get(keys.account_rate(scope, ident, window)) or 0)


# OpenID Connect subjects (accounts/oidc.py): which user a provider's token names.

# A subject's entry lives this long after its last write: a user deleted while Redis was down
# leaves one behind for a day at most (the service then finds no counters of theirs).
IDENTITY_SECONDS = 86400


def identity_lookup(issuer: str, subject: str) -> int | None:
    """The user id remembered for a provider's subject, or None: look it up in SQL."""
    found = command("GET", keys.provider_identity(issuer, subject))  # the fast path
    return None if found is None else int(found)


def identity_remember(issuer: str, subject: str, user_id: int) -> None:
    with guarded():
        client().set(keys.provider_identity(issuer, subject), user_id, ex=IDENTITY_SECONDS)


def identity_forget(pairs: list[tuple[str, str]]) -> None:
    """Drop the entries of these (issuer, subject) pairs: their user is gone."""
    if not pairs:
        return
    with guarded():
        pipe = client().pipeline(transaction=False)
        for issuer, subject in pairs:
            pipe.delete(keys.provider_identity(issuer, subject))  # each in its own slot
        pipe.execute()
