from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from counters import store


class RefreshToken(tokens.RefreshToken):
    """simplejwt's refresh token, carrying the user's revocation mark as `rev`; the access
    tokens made from it copy the claim (see counters.store.revocation_key)."""

    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        token["rev"] = store.revocation_mark(user.pk)
        return token


class TokenObtainSerializer(TokenObtainPairSerializer):
    token_class = RefreshToken
