from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from accounts import services


class RefreshToken(tokens.RefreshToken):
    """simplejwt's refresh token, carrying the user's revocation mark as `rev`; the access
    tokens made from it copy the claim (see incrementific.redis.keys.revocation). The mark is SQL's,
    which Redis's copy may have lost (a flush, a failover)."""

    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        token["rev"] = services.revocation_mark(user.pk)
        return token


class TokenObtainSerializer(TokenObtainPairSerializer):
    token_class = RefreshToken
