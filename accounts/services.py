import hashlib
import re
import secrets
import time
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import IntegrityError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import keystore, store
from accounts.models import ApiKey, ProviderIdentity, TokenRevocation
from accounts.scopes import ACTIONS, KeyScope
from accounts.store import KEY_TOUCH_SECONDS


class UsernameTaken(Exception):
    pass


# Sent with ``user`` inside the transaction that makes an account (a sign-up, a provider's first
# log-in); a receiver that raises rolls the account back. counters makes the `default` counter.
user_registered = Signal()


class ApiKeyNotFound(Exception):
    pass


def user_register(*, username: str, password: str, email: str = "") -> AbstractUser:
    """Create a user; what comes with an account (counters' `default` counter at 0, from
    :data:`accounts.signals.user_registered`) comes in the same transaction, or nothing does
    (a Redis failure rolls the user back)."""
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise UsernameTaken()
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, password=password, email=email)
        except IntegrityError:
            raise UsernameTaken() from None
        user_registered.send(sender=User, user=user)
    return user


class IdentityTaken(Exception):
    """The provider's subject is linked to another account already."""


def _free_username(wanted: str) -> str:
    """``wanted`` in the characters a username may hold, made unique: ``ada``, ``ada-2``, ..."""
    base = re.sub(r"[^\w.@+-]", "", wanted)[:140] or "user"
    User = get_user_model()
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def user_for_provider_subject(*, issuer: str, subject: str, claims: dict) -> AbstractUser:
    """The account of a provider's subject, made on their first login or first API call as
    sign-up makes one (a ``default`` counter at 0), with no usable password; its username is
    ``preferred_username``, or the e-mail's local part, or the subject, made unique."""
    User = get_user_model()
    identity = ProviderIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is not None:
        return identity.user
    wanted = claims.get("preferred_username") or str(claims.get("email", "")).partition("@")[0] or subject
    email = claims.get("email", "") if claims.get("email_verified") else ""
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=_free_username(str(wanted)), password=None, email=email)
            ProviderIdentity.objects.create(user=user, issuer=issuer, subject=subject)
            user_registered.send(sender=User, user=user)
    except IntegrityError:  # a concurrent first login made it
        return ProviderIdentity.objects.select_related("user").get(issuer=issuer, subject=subject).user
    return user


def provider_identity_link(*, user: AbstractUser, issuer: str, subject: str) -> None:
    """Link a provider's subject to an existing account, at its logged-in owner's request.
    Raises IdentityTaken if the subject is another account's."""
    try:
        with transaction.atomic():
            ProviderIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    except IntegrityError:
        if not ProviderIdentity.objects.filter(user=user, issuer=issuer, subject=subject).exists():
            raise IdentityTaken() from None


KEY_PREFIX = "inc_"
# The most digits a user id has (a bigint): a longer "id" makes the key malformed, not a lookup.
_MAX_ID_DIGITS = 19


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_owner(secret: str) -> int | None:
    """The user id a key names, ``inc_<id>.<random>``, or None (a key issued before keys named
    their owner, or not a key of ours). A name is a claim, not a proof: only the hash, which
    covers it, is checked, so a changed id is a key that does not exist."""
    head, dot, _ = secret[len(KEY_PREFIX) :].partition(".")
    if not dot or not (head.isascii() and head.isdigit()) or len(head) > _MAX_ID_DIGITS:
        return None
    return int(head)


def api_key_create(
    *,
    user_id: int,
    name: str,
    counters: list[str] | None = None,
    actions: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the user: the row, and the key itself, which is never stored. ``counters``,
    ``actions`` and ``expires_at`` limit it (accounts/scopes.py); None: no limit.

    The key names its owner (``inc_42.<256 random bits>``) so that a counter's own Redis call
    can check it beside the counter: `next` with a key is one round trip. The id is not a secret
    (a key is shown only to its owner), and the random part is what makes the key."""
    random_part = secrets.token_urlsafe(32)
    secret = f"{KEY_PREFIX}{user_id}.{random_part}"
    prefix = f"{KEY_PREFIX}{user_id}.{random_part[:8]}"
    row = ApiKey.objects.create(
        user_id=user_id,
        name=name,
        prefix=prefix,
        hashed=api_key_hash(secret),
        counters=_stored_counters(counters),
        actions=_stored_actions(actions),
        expires_at=expires_at,
    )
    return row, secret


def _stored_counters(counters: list[str] | None) -> list[str] | None:
    return None if counters is None else sorted(set(counters))


def _stored_actions(actions: list[str] | None) -> list[str] | None:
    """In ACTIONS' order, once each: the same scope is always stored the same way."""
    return None if actions is None else [action for action in ACTIONS if action in actions]


def api_key_user_id(secret: str) -> tuple[int, KeyScope] | None:
    """The id of the active user the key belongs to, and the key's scope; None for a key that
    does not exist, has expired, or whose user is inactive.

    The steady path is one Redis round trip and no SQL; a key Redis does not know is looked up
    in SQL under its row lock (so a revocation, which holds that lock, cannot be undone by a
    lookup that read the row before it) and remembered again.
    """
    hashed = api_key_hash(secret)
    named = api_key_owner(secret)
    found = keystore.lookup(hashed, named)
    if found is not None:
        user_id, touched, scope = found
        if touched:
            api_key_record_use(hashed)
        return user_id, scope
    with transaction.atomic():
        row = ApiKey.objects.select_for_update().select_related("user").filter(hashed=hashed).first()
        if row is None or not row.user.is_active or named not in (None, row.user_id):
            return None
        if row.expires_at is not None and row.expires_at <= timezone.now():
            return None  # an expired key is refused as a revoked one is; its entry stays out
        keystore.remember(hashed, row.user_id, row.scope, names_owner=named is not None)
        row.last_used_at = timezone.now()
        row.save(update_fields=["last_used_at"])
    return row.user_id, row.scope


def api_key_user_id_in_sql(secret: str) -> tuple[int, KeyScope] | None:
    """:func:`api_key_user_id` without Redis: SQL alone answers (a gapless counter's calls, which
    must not need Redis). The key's last use is recorded at most once a KEY_TOUCH_SECONDS."""
    hashed = api_key_hash(secret)
    named = api_key_owner(secret)
    row = ApiKey.objects.select_related("user").filter(hashed=hashed).first()
    if row is None or not row.user.is_active or named not in (None, row.user_id):
        return None
    now = timezone.now()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= KEY_TOUCH_SECONDS:
        api_key_record_use(hashed)
    return row.user_id, row.scope


_UNCHANGED = object()


def api_key_change_scope(
    *, user_id: int, key_id: int, counters=_UNCHANGED, actions=_UNCHANGED, expires_at=_UNCHANGED
) -> ApiKey:
    """Limit (or free) a key: each of ``counters``, ``actions`` and ``expires_at`` given (None: no
    limit) replaces the key's. The change holds from the next request on: the key's Redis entry
    is dropped under the row's lock, inside the transaction, like a revocation's, so a lookup
    that missed it waits for the lock, then reads and caches the new scope."""
    with transaction.atomic():
        row = ApiKey.objects.select_for_update().filter(user_id=user_id, pk=key_id).first()
        if row is None:
            raise ApiKeyNotFound()
        if counters is not _UNCHANGED:
            row.counters = _stored_counters(counters)
        if actions is not _UNCHANGED:
            row.actions = _stored_actions(actions)
        if expires_at is not _UNCHANGED:
            row.expires_at = expires_at
        row.save(update_fields=["counters", "actions", "expires_at"])
        keystore.forget([(row.hashed, row.user_id)])
    return row


def api_key_record_use(hashed: str) -> None:
    """Record in SQL that a key was used now (at most once a store.KEY_TOUCH_SECONDS)."""
    ApiKey.objects.filter(hashed=hashed).update(last_used_at=timezone.now())


def api_key_revoke(*, user_id: int, key_id: int) -> None:
    """Delete a key; it stops working at once (accounts/signals.py drops its Redis entry)."""
    with transaction.atomic():
        deleted, _ = ApiKey.objects.filter(user_id=user_id, pk=key_id).delete()
    if not deleted:
        raise ApiKeyNotFound()


def user_change_password(*, user: AbstractUser, new_password: str) -> None:
    """Set a new password and refuse every token issued before it, refresh and access alike.
    API keys stay (revoke them one by one)."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        for token in OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True):
            BlacklistedToken.objects.get_or_create(token=token)
        revoke_access_tokens(user_id=user.pk)


def revoke_access_tokens(*, user_id: int) -> None:
    """Access tokens of the user issued before this millisecond are refused from now on. The
    mark goes to SQL in the caller's transaction, then to Redis: if Redis fails, nothing changed."""
    mark = int(time.time() * 1000)
    with transaction.atomic():
        TokenRevocation.objects.update_or_create(user_id=user_id, defaults={"mark": mark})
        store.revoke_tokens(user_id, lifetime=_access_lifetime(), mark=mark)


def revocation_mark(user_id: int) -> int:
    """The user's mark as SQL keeps it (0 if never revoked): what a token issued now carries."""
    # One indexed row by its key, asked on every call of a gapless counter (counters/gapless.py):
    # written in SQL, as the ORM's query costs more to build than to run (BENCHMARKS.md).
    table = connection.ops.quote_name(TokenRevocation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT mark FROM {table} WHERE user_id = %s", [user_id])
        found = cursor.fetchone()
    return found[0] if found else 0


def put_back_revocation_mark(user_id: int) -> None:
    """Redis holds no mark of this primary's own for the user (store.RevocationUnknown): put
    SQL's back (0 if none), so the next check is Redis's alone again."""
    store.revoke_tokens(user_id, lifetime=_access_lifetime(), mark=revocation_mark(user_id))


def _access_lifetime() -> int:
    return int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds())
