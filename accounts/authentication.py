import time
from collections.abc import Callable
from functools import lru_cache

from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts import store
from accounts.scopes import EVERYTHING, KeyScope, ScopeDenied
from accounts.services import (
    KEY_PREFIX,
    api_key_hash,
    api_key_owner,
    api_key_record_use,
    api_key_user_id,
    put_back_revocation_mark,
)


class ApiKeyUser:
    """Who an API key belongs to, known by id only: the counter endpoints need nothing else,
    and loading the user would cost the hot path an SQL query.

    On the endpoints that check a key inside the counter's own Redis call (see
    :class:`CheckedInStore`), authentication takes the key's word for its owner and checks
    nothing yet: the user is *unchecked*. Its ``id`` is never handed out unchecked. Reading it
    checks the key (a Redis round trip; SQL on a miss) unless the counter's call already did.
    """

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, secret: str):
        self.secret = secret
        self.hashed = api_key_hash(secret)
        self.named_id = api_key_owner(secret)  # who the key says it belongs to
        self._id: int | None = None  # who it belongs to, once checked
        self._scope: KeyScope | None = None  # what it may do, once looked up

    @property
    def checked(self) -> bool:
        return self._id is not None

    def check(self) -> int:
        """The key's user id, checking the key first if nothing did yet; 401 if it is not valid
        (unknown, revoked, expired)."""
        if self._id is None:
            found = api_key_user_id(self.secret)
            if found is None:
                raise invalid_key()
            self._id, self._scope = found
        return self._id

    id = pk = property(check)

    @property
    def scope(self) -> KeyScope:
        """What the key may do (checking the key, if nothing did)."""
        if self._scope is None:
            self._id = None  # a counter's script checked the key for its own action only: look it up
            self.check()
        return self._scope

    def checked_by_store(self) -> None:
        """A counter's Redis call found the key's entry in the slot of the user it names."""
        self._id = self.named_id

    def __str__(self) -> str:
        return f"user {self._id} (API key)" if self.checked else f"user {self.named_id}? (API key, unchecked)"


def invalid_key() -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed("Invalid or revoked API key.", "invalid_api_key")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer inc_...`. Other bearer tokens are left to the JWT class, which must
    come after this one (it would refuse an API key as a malformed JWT).

    A key is checked here, unless the view checks it in the counter's own Redis call (its
    ``api_key_checked_in_store`` is true, see :class:`CheckedInStore`) and the key names its
    owner; then the user is unchecked until that call (see :class:`ApiKeyUser`)."""

    keyword = "bearer"

    def authenticate(self, request):
        # META, not DRF's get_authorization_header(): that reads request.headers, which Django
        # builds by parsing every header of the request (3% of a `next`, and JWTs never need it).
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() != self.keyword or not parts[1].startswith(KEY_PREFIX):
            return None
        user = ApiKeyUser(parts[1])
        view = request.parser_context.get("view") if request.parser_context else None
        if user.named_id is None or not getattr(view, "api_key_checked_in_store", False):
            user.check()
        return user, None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


@lru_cache(maxsize=4096)
def _verified(raw: bytes) -> AccessToken:
    # Checking a signature costs more than the rest of authentication; a token's bytes never
    # change, so a worker checks each one once. Expiry is checked again on every use.
    return AccessToken(raw)


class JWTAuthentication(JWTStatelessUserAuthentication):
    """simplejwt's stateless JWT authentication (no SQL: the user id comes from the token), with
    each token's signature checked once per worker rather than once per request."""

    def __init__(self):
        # simplejwt's looks the user model up (get_user_model()) for its stateful get_user(),
        # and DRF makes its authenticators anew for every request: 1% of a `next` for nothing.
        pass

    def get_validated_token(self, raw_token: bytes):
        try:
            token = _verified(raw_token)
        except TokenError:
            # Not cached (lru_cache keeps no failures): simplejwt's own path gives its exact errors.
            return super().get_validated_token(raw_token)
        if token["exp"] <= time.time():
            return super().get_validated_token(raw_token)  # expired since: its own error again
        return token


def key_scope(request) -> KeyScope:
    """What the request's credential may do: an API key's scope; anything else (a token, a
    session) may do everything its user may."""
    user = request.user
    return user.scope if isinstance(user, ApiKeyUser) else EVERYTHING


def with_revocation_mark(user_id: int, call: Callable):
    """``call()``, which checks an access token against the user's revocation mark in Redis; when
    Redis has no mark of its primary's own (store.RevocationUnknown: a failover, fenced), SQL's is
    put back first and the call made again. Nothing changed the first time."""
    try:
        return call()
    except store.RevocationUnknown:
        put_back_revocation_mark(user_id)
        return call()


def token_credential(request) -> store.TokenRev | None:
    """The request's access token as the store checks it (its `rev` claim, 0 if it has none),
    or None when the request did not come with an access token (an API key, a session)."""
    token = request.auth
    if isinstance(token, AccessToken):
        return store.TokenRev(int(token.get("rev", 0)))
    rev = getattr(token, "rev", None)  # a provider's access token (accounts/oidc.py)
    return None if rev is None else store.TokenRev(rev)


class CheckedInStore:
    """For views whose every counter call checks the caller inside its own Redis call, so that
    authentication needs no round trip of its own: an access token against its user's
    revocation mark, an API key against its entry beside the counters of the user it names.

    Such a view makes each counter call through :meth:`as_caller`. The two flags say which
    requests do: by default all but OPTIONS (DRF's metadata, which makes none); a viewset says
    which actions. The others are checked as usual, by ApiKeyAuthentication and TokenNotRevoked.
    """

    @property
    def api_key_checked_in_store(self) -> bool:
        return self.request.method != "OPTIONS"

    @property
    def revocation_checked_in_store(self) -> bool:
        return self.request.method != "OPTIONS"

    def as_caller(self, service: Callable[..., object], *, action: str, **kwargs) -> object:
        """``service(owner_id=…, credential=…, **kwargs)``, a counter call (services.counter_next
        and such, which does ``action`` on the counter ``kwargs["name"]``) for the request's user,
        which checks ``credential``, and an API key's scope, in its own Redis call."""
        user = self.request.user
        if not isinstance(user, ApiKeyUser):  # a token or a session: the user's own rights
            call = lambda: service(owner_id=user.id, credential=token_credential(self.request), **kwargs)  # noqa: E731
            return with_revocation_mark(user.id, call)
        if user.checked:
            user.scope.check(action, kwargs["name"])
            return service(owner_id=user.id, credential=None, **kwargs)
        try:
            state = service(owner_id=user.named_id, credential=store.KeyEntry(user.hashed), **kwargs)
        except store.ApiKeyUnknown:
            # Redis has no entry for the key: it forgot it, or the key is not valid. check()
            # asks SQL, which puts the entry back, or answers 401.
            owner = user.check()
            user.scope.check(action, kwargs["name"])
            return service(owner_id=owner, credential=None, **kwargs)
        except store.ApiKeyOutOfScope:
            user.checked_by_store()  # the key is valid: the answer is the 403, not a 401
            raise ScopeDenied(action, kwargs["name"]) from None
        user.checked_by_store()
        if state.key_touched:
            api_key_record_use(user.hashed)
        return state

    def handle_exception(self, exc):
        # Any other error (a 400, a 404, a 429) for a key not checked yet would answer a wrong
        # key with something else than a 401: check the key first.
        if not isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            try:
                user = self.request.user
                if isinstance(user, ApiKeyUser):
                    user.check()
            except Exception as failure:  # noqa: BLE001 -- answered instead, by the same handler
                exc = failure
        return super().handle_exception(exc)


class TokenNotRevoked(BasePermission):
    """Refuses an access token issued before its user's tokens were revoked (a deactivation,
    a deletion, a password change): one Redis read. The counter endpoints skip it (they say so
    with ``revocation_checked_in_store``) because they check inside their own Redis call."""

    message = "Token has been revoked."
    code = "token_revoked"

    def has_permission(self, request, view) -> bool:
        if getattr(view, "revocation_checked_in_store", False):
            return True
        token = token_credential(request)
        if token is None:
            return True
        try:
            with_revocation_mark(request.user.id, lambda: store.check_not_revoked(request.user.id, token.rev))
        except store.TokenRevoked:
            raise exceptions.AuthenticationFailed(self.message, self.code) from None
        return True
