import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import keystore
from accounts.models import ApiKey
from counters import store as counter_store
from counters.services import counter_create

DEFAULT_COUNTER = "default"


class UsernameTaken(Exception):
    pass


class ApiKeyNotFound(Exception):
    pass


def user_register(*, username: str, password: str, email: str = "") -> AbstractUser:
    """Create a user with their `default` counter at 0, both or neither (a Redis failure
    rolls the user back)."""
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise UsernameTaken()
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, password=password, email=email)
        except IntegrityError:
            raise UsernameTaken() from None
        counter_create(owner_id=user.id, name=DEFAULT_COUNTER)
    return user


KEY_PREFIX = "inc_"


def _hashed(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, user_id: int, name: str) -> tuple[ApiKey, str]:
    """A new key for the user: the row, and the key itself, which is never stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey.objects.create(user_id=user_id, name=name, prefix=secret[:12], hashed=_hashed(secret))
    return row, secret


def api_key_user_id(secret: str) -> int | None:
    """The id of the active user the key belongs to, or None.

    The steady path is one Redis round trip and no SQL; a key Redis does not know is looked up
    in SQL under its row lock (so a revocation, which holds that lock, cannot be undone by a
    lookup that read the row before it) and remembered again.
    """
    hashed = _hashed(secret)
    found = keystore.lookup(hashed)
    if found is not None:
        user_id, touched = found
        if touched:
            ApiKey.objects.filter(hashed=hashed).update(last_used_at=timezone.now())
        return user_id
    with transaction.atomic():
        row = ApiKey.objects.select_for_update().select_related("user").filter(hashed=hashed).first()
        if row is None or not row.user.is_active:
            return None
        keystore.remember(hashed, row.user_id)
        row.last_used_at = timezone.now()
        row.save(update_fields=["last_used_at"])
    return row.user_id


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
    """Access tokens of the user issued before this second are refused from now on."""
    lifetime = int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds())
    counter_store.revoke_tokens(user_id, lifetime=lifetime)
