from django.contrib.auth import get_user_model
from rest_framework import exceptions, status, viewsets
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenBlacklistView

from accounts.authentication import ApiKeyUser
from accounts.models import ApiKey
from accounts.serializers import ApiKeySerializer, NewApiKeySerializer, RegisterSerializer, UserSerializer
from accounts.services import ApiKeyNotFound, UsernameTaken, api_key_create, api_key_revoke, user_register


class RegisterView(APIView):
    """Create an account (and its counter `default` at 0); answers with a token pair."""

    authentication_classes = []
    permission_classes = [AllowAny]
    serializer_class = RegisterSerializer

    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = user_register(**serializer.validated_data)
        except UsernameTaken:
            raise exceptions.ValidationError({"username": ["A user with that username already exists."]}) from None
        refresh = RefreshToken.for_user(user)
        body = {**UserSerializer(user).data, "access": str(refresh.access_token), "refresh": str(refresh)}
        return Response(body, status=status.HTTP_201_CREATED)


class LogoutView(TokenBlacklistView):
    """Log out: the refresh token given here is refused from now on."""

    def post(self, request, *args, **kwargs):
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


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


class ApiKeyViewSet(viewsets.GenericViewSet):
    """Your API keys: long-lived credentials for scripts and servers, sent as `Authorization:
    Bearer inc_...`. A new key is shown once; DELETE revokes one at once."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsAuthenticated, NotWithAnApiKey]
    pagination_class = None

    def get_queryset(self):
        return ApiKey.objects.filter(user_id=self.request.user.id)

    def list(self, request):
        return Response(ApiKeySerializer(self.get_queryset(), many=True).data)

    def create(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, secret = api_key_create(user_id=request.user.id, name=serializer.validated_data["name"])
        row.key = secret
        return Response(NewApiKeySerializer(row).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk):
        try:
            api_key_revoke(user_id=request.user.id, key_id=int(pk))
        except ApiKeyNotFound:
            raise exceptions.NotFound() from None
        return Response(status=status.HTTP_204_NO_CONTENT)
