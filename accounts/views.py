from django.contrib.auth import get_user_model
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenBlacklistView

from accounts.serializers import RegisterSerializer, UserSerializer
from accounts.services import UsernameTaken, user_register


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
