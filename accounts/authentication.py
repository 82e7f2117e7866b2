"""The API's credentials, each made into a :class:`accounts.caller.Caller` on ``request.auth``.

Every class here answers with ``(user, caller)``: the user for DRF and the pages (by id alone:
no SQL on the steady path), the caller for the counters, which check it in their own Redis call.
"""

import time
from functools import lru_cache

from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts import store
from accounts.caller import Caller
from accounts.services import KEY_PREFIX


class ApiKeyUser:
    """Who an API key belongs to, known by id only: the counter endpoints need nothing else, and
    loading the user would cost the hot path an SQL query. Its ``id`` is None while the key is
    unchecked (see :class:`accounts.caller.Caller`): nothing unchecked is ever handed out."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False

    def __init__(self, caller: Caller):
        self.caller = caller

    @property
    def id(self) -> int | None:
        return self.caller.named_owner if self.caller.checked else None

    pk = id

    def __str__(self) -> str:
        return f"user {self.id} (API key)" if self.caller.checked else f"user {self.caller.named_owner}? (API key)"


def checks_caller_in_store(request, view) -> bool:
    """Whether this request's handler checks its caller itself (through the Caller, in the
    counter's own Redis call where it can): the views that say so with ``checks_caller = True``
    (the counters'), but for OPTIONS, which DRF answers without any handler."""
    # Django's request under DRF's: DRF's proxies `method` through a failed attribute lookup, 1%
    # of a `next` (incrementific/idempotency.py says the same of META).
    return getattr(view, "checks_caller", False) and getattr(request, "_request", request).method != "OPTIONS"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer inc_...`. Other bearer tokens are left to the JWT class, which must
    come after this one (it would refuse an API key as a malformed JWT).

    A key is checked here, unless the view checks its caller itself (checks_caller_in_store)
    and the key names its owner: then the caller is unchecked until the counter's call."""

    keyword = "bearer"

    def authenticate(self, request):
        # META, not DRF's get_authorization_header(): that reads request.headers, which Django
        # builds by parsing every header of the request (3% of a `next`, and JWTs never need it).
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() != self.keyword or not parts[1].startswith(KEY_PREFIX):
            return None
        caller = Caller.with_api_key(parts[1])
        view = request.parser_context.get("view") if request.parser_context else None
        if caller.named_owner is None or not checks_caller_in_store(request, view):
            caller.verify()
        return ApiKeyUser(caller), caller

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

    def authenticate(self, request):
        # simplejwt's own authenticate(), with the request's Caller made from its answer.
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        token = self.get_validated_token(raw_token)
        user = self.get_user(token)
        return user, Caller(user.id, store.TokenRev(int(token.get("rev", 0))), token=token)

    def get_validated_token(self, raw_token: bytes):
        try:
            token = _verified(raw_token)
        except TokenError:
            # Not cached (lru_cache keeps no failures): simplejwt's own path gives its exact errors.
            return super().get_validated_token(raw_token)
        if token["exp"] <= time.time():
            return super().get_validated_token(raw_token)  # expired since: its own error again
        return token


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's, for the browsable API: a person logged in, who may do whatever their user may."""

    def authenticate(self, request):
        found = super().authenticate(request)
        return None if found is None else (found[0], Caller(found[0].id))


class TokenNotRevoked(BasePermission):
    """Refuses an access token issued before its user's tokens were revoked (a deactivation,
    a deletion, a password change): one Redis read. The counters' views check it themselves,
    in their own Redis call (checks_caller_in_store)."""

    def has_permission(self, request, view) -> bool:
        if not checks_caller_in_store(request, view):
            caller = request.auth
            if isinstance(caller, Caller):
                caller.owner(revocation=True)
        return True


def unchecked_caller_first(request, exc: Exception) -> Exception:
    """What to answer instead of ``exc``: a 400, a 404 or a 429 for an API key nothing checked
    yet would answer a wrong key with something else than a 401, so the key is checked first."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return exc
    try:
        caller = request.auth
        if isinstance(caller, Caller) and not caller.checked:
            caller.verify()
    except Exception as failure:  # noqa: BLE001 -- answered instead, by the same handler
        return failure
    return exc
