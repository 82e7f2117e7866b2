import time
from functools import lru_cache

from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.services import KEY_PREFIX, api_key_user_id
from counters import store


class ApiKeyUser:
    """Who an API key belongs to, known by id only: the counter endpoints need nothing else,
    and loading the user would cost the hot path an SQL query."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user_id: int):
        self.id = self.pk = user_id

    def __str__(self) -> str:
        return f"user {self.id} (API key)"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer inc_...`. Other bearer tokens are left to the JWT class, which must
    come after this one (it would refuse an API key as a malformed JWT)."""

    keyword = "bearer"

    def authenticate(self, request):
        # META, not DRF's get_authorization_header(): that reads request.headers, which Django
        # builds by parsing every header of the request (3% of a `next`, and JWTs never need it).
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() != self.keyword or not parts[1].startswith(KEY_PREFIX):
            return None
        user_id = api_key_user_id(parts[1])
        if user_id is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.", "invalid_api_key")
        return ApiKeyUser(user_id), None

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

    def get_validated_token(self, raw_token: bytes):
        try:
            token = _verified(raw_token)
        except TokenError:
            # Not cached (lru_cache keeps no failures): simplejwt's own path gives its exact errors.
            return super().get_validated_token(raw_token)
        if token["exp"] <= time.time():
            return super().get_validated_token(raw_token)  # expired since: its own error again
        return token


def token_rev(request) -> int | None:
    """The `rev` claim of the request's access token (0 if it has none), or None when the
    request did not come with an access token (an API key, a session)."""
    token = request.auth
    return int(token.get("rev", 0)) if isinstance(token, AccessToken) else None


class TokenNotRevoked(BasePermission):
    """Refuses an access token issued before its user's tokens were revoked (a deactivation,
    a deletion, a password change): one Redis read. The counter endpoints skip it (they say so
    with ``revocation_checked_in_store``) because they check inside their own Redis call."""

    message = "Token has been revoked."
    code = "token_revoked"

    def has_permission(self, request, view) -> bool:
        iat = token_rev(request)
        if iat is None or getattr(view, "revocation_checked_in_store", False):
            return True
        try:
            store.check_not_revoked(request.user.id, iat)
        except store.TokenRevoked:
            raise exceptions.AuthenticationFailed(self.message, self.code) from None
        return True
