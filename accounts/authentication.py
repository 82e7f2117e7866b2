from rest_framework import authentication, exceptions

from accounts.services import KEY_PREFIX, api_key_user_id


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

    keyword = b"bearer"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != self.keyword or not parts[1].startswith(KEY_PREFIX.encode()):
            return None
        user_id = api_key_user_id(parts[1].decode("ascii", errors="replace"))
        if user_id is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.", "invalid_api_key")
        return ApiKeyUser(user_id), None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
