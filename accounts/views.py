from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views

from accounts import ratelimit
from accounts.authentication import ApiKeyUser, TokenNotRevoked
from accounts.models import ApiKey
from accounts.serializers import (
    USERNAME_TAKEN,
    ApiKeySerializer,
    KeyScopeSerializer,
    NewApiKeySerializer,
    PasswordChangeSerializer,
    RegisteredSerializer,
    RegisterSerializer,
    TokenPairSerializer,
    UserSerializer,
)
from accounts.services import (
    ApiKeyNotFound,
    UsernameTaken,
    api_key_change_scope,
    api_key_create,
    api_key_revoke,
    user_change_password,
    user_register,
)
from accounts.throttling import LoginThrottle, RegisterThrottle
from accounts.tokens import RefreshToken
from incrementific import idempotency
from incrementific.browsable import Described
from incrementific.schema import IDEMPOTENCY_KEY, responses


@extend_schema(
    summary="Register",
    description="The password's shortest length is in the schema; it must also not be one of the 20,000 most "
    "common passwords, not be all digits, and not be too like the username or the e-mail (Django's password "
    "validators). Every field's errors come back at once.",
    responses=responses({201: RegisteredSerializer}, 400, 413, 415, 429, 503),
)
class RegisterView(APIView):
    """Create an account (and its counter `default` at 0); answers with a token pair."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [RegisterThrottle]
    serializer_class = RegisterSerializer

    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = user_register(**serializer.validated_data)
        except UsernameTaken:
            raise exceptions.ValidationError({"username": [USERNAME_TAKEN]}) from None
        refresh = RefreshToken.for_user(user)
        body = {**UserSerializer(user).data, "access": str(refresh.access_token), "refresh": str(refresh)}
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(summary="Log in", responses=responses({200: TokenPairSerializer}, 400, 401, 413, 415, 429, 503))
class TokenView(jwt_views.TokenObtainPairView):
    """Exchange a username and password for an access token (5 minutes) and a refresh token."""

    throttle_classes = [LoginThrottle]

    def post(self, request, *args, **kwargs):
        username = login_username(request.data)
        ratelimit.check("login_failures", username)
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            ratelimit.count("login_failures", username)
            raise


def login_username(data) -> str:
    """Who a login attempt is for, as the failure limit counts it (usernames ignore case)."""
    username = data.get("username") if isinstance(data, dict) else None
    return username.lower()[:150] if isinstance(username, str) else ""


@extend_schema(summary="Refresh", responses=responses({200: TokenPairSerializer}, 400, 401, 413, 415, 429, 503))
class TokenRefreshView(jwt_views.TokenRefreshView):
    """A new token pair for a refresh token, which is refused from then on (rotation)."""

    throttle_classes = [LoginThrottle]


@extend_schema(summary="Log out", responses=responses({204: None}, 400, 401, 413, 415))
class LogoutView(jwt_views.TokenBlacklistView):
    """Log out: the refresh token given here is refused from now on."""

    def post(self, request, *args, **kwargs):
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(summary="Who am I", responses=responses({200: UserSerializer}, 401))
class MeView(APIView):
    """Who the credentials belong to."""

    def get(self, request):
        user = get_user_model().objects.filter(pk=request.user.id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("User not found.", "user_not_found")
        return Response(UserSerializer(user).data)


class NotWithAnApiKey(BasePermission):
    message = "API keys cannot manage API keys; log in with a password."
    code = "api_key_not_allowed"

    def has_permission(self, request, view) -> bool:
        return not isinstance(request.user, ApiKeyUser)


@extend_schema(
    summary="Change your password",
    request=PasswordChangeSerializer,
    responses=responses({204: None}, 400, 401, 403, 413, 415, 429),
)
class PasswordView(APIView):
    """Change your password (the old one is needed). Your refresh tokens are refused from then
    on; log in again with the new password."""

    permission_classes = [IsAuthenticated, TokenNotRevoked, NotWithAnApiKey]
    throttle_classes = [LoginThrottle]

    def post(self, request):
        user = get_user_model().objects.filter(pk=request.user.id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("User not found.", "user_not_found")
        serializer = PasswordChangeSerializer(data=request.data, context={"user": user})
        serializer.is_valid(raise_exception=True)
        user_change_password(user=user, new_password=serializer.validated_data["new_password"])
        return Response(status=status.HTTP_204_NO_CONTENT)


KEY_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The key's id.")


# Which limit a long list of counters meets first (schemathesis.toml says the same).
BODY_LIMIT = (
    "A body is at most MAX_REQUEST_BODY_BYTES (64 KiB by default), or it is a 413 before anything reads it: "
    "`counters` may hold 1,000 names, but 1,000 names of 64 characters do not fit (68 KB in JSON, more in a form)."
)


@extend_schema_view(
    list=extend_schema(summary="List your API keys", responses=responses({200: ApiKeySerializer(many=True)}, 401, 403)),
    create=extend_schema(
        summary="Create an API key",
        description=f"{BODY_LIMIT}",
        parameters=[IDEMPOTENCY_KEY],
        request=ApiKeySerializer,
        responses=responses({201: NewApiKeySerializer}, 400, 401, 403, 409, 413, 415, 422, 503),
    ),
    partial_update=extend_schema(
        summary="Limit an API key",
        description="Change its `counters`, `actions` or `expires_at` (those given; null is no limit). "
        f"The key is held to its new scope from the next request on.\n\n{BODY_LIMIT}",
        parameters=[KEY_ID],
        request=KeyScopeSerializer,
        responses=responses({200: ApiKeySerializer}, 400, 401, 403, 404, 413, 415, 503),
    ),
    destroy=extend_schema(
        summary="Revoke an API key", parameters=[KEY_ID], responses=responses({204: None}, 401, 403, 404, 503)
    ),
)
class ApiKeyViewSet(Described, viewsets.GenericViewSet):
    """Your API keys: long-lived credentials for scripts and servers, sent as `Authorization:
    Bearer inc_...`. A new key is shown once; DELETE revokes one at once."""

    pages = {
        "List": (
            "API keys",
            __doc__,
            "POST a `name` to create one; the answer shows the key, once. Limit it with `counters` (the names "
            "it may touch), `actions` (from `read`, `next`, `set`, `create`, `delete`) and `expires_at`.",
        ),
        "Instance": (
            "API key",
            "One of your API keys. PATCH its `counters`, `actions` and `expires_at` to limit it; DELETE "
            "revokes it. Either holds from the next request on.",
        ),
    }

    serializer_class = ApiKeySerializer
    permission_classes = [IsAuthenticated, TokenNotRevoked, NotWithAnApiKey]
    lookup_value_regex = "[0-9]{1,18}"
    pagination_class = None

    def get_queryset(self):
        return ApiKey.objects.filter(user_id=self.request.user.id)

    def list(self, request):
        return Response(ApiKeySerializer(self.get_queryset(), many=True).data)

    @idempotency.idempotent_change
    def create(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, secret = api_key_create(user_id=request.user.id, **serializer.validated_data)
        row.key = secret
        return Response(NewApiKeySerializer(row).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk):
        serializer = KeyScopeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            row = api_key_change_scope(user_id=request.user.id, key_id=int(pk), **serializer.validated_data)
        except ApiKeyNotFound:
            raise exceptions.NotFound() from None
        return Response(ApiKeySerializer(row).data)

    def destroy(self, request, pk):
        try:
            api_key_revoke(user_id=request.user.id, key_id=int(pk))
        except ApiKeyNotFound:
            raise exceptions.NotFound() from None
        return Response(status=status.HTTP_204_NO_CONTENT)
