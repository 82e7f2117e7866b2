from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from accounts.scopes import ACTIONS
from incrementific.names import CounterNameField

USERNAME_TAKEN = "A user with that username already exists."


class RegisterSerializer(serializers.Serializer):
    """Every field is checked on its own, so that one answer lists every field's errors (a check
    in validate() would run only once all the fields had passed)."""

    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True, default="")

    def validate_username(self, value: str) -> str:
        # Also caught at creation (accounts/services.py), for two sign-ups racing for one name.
        if get_user_model().objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError(USERNAME_TAKEN)
        return value

    def validate_password(self, value: str) -> str:
        # The similarity check compares the password with the username and e-mail as sent,
        # whether or not those are valid themselves.
        sent = self.initial_data
        candidate = get_user_model()(
            username=_text(sent.get("username")), email=_text(sent.get("email")) if "email" in sent else ""
        )
        try:
            password_validation.validate_password(value, user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None
        return value


def _text(value) -> str:
    return value if isinstance(value, str) else ""


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True, help_text="An e-mail address, or empty.")


class _ListField(serializers.ListField):
    """A list whose items' errors are one list of messages ("item 2: ..."): the shape of every
    field's errors in the API (a dict by index, DRF's own, is not)."""

    def run_child_validation(self, data):
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as exc:
            messages = [f"item {int(i) + 1}: {m}" for i, errors in exc.detail.items() for m in errors]
            raise serializers.ValidationError(messages) from None


def _counters_field():
    return _ListField(
        child=CounterNameField(),
        allow_null=True,
        allow_empty=False,
        max_length=1000,
        required=False,
        default=None,
        help_text="The names of the counters it may touch (they need not exist yet); null: all.",
    )


def _actions_field():
    return _ListField(
        child=serializers.ChoiceField(ACTIONS),
        allow_null=True,
        allow_empty=False,
        required=False,
        default=None,
        help_text="What it may do: read, next, set, create, delete; null: all.",
    )


def _expires_at_field():
    return serializers.DateTimeField(
        allow_null=True, required=False, default=None, help_text="When it stops working (ISO 8601); null: never."
    )


class _ExpiresInTheFuture:
    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class KeyScopeSerializer(_ExpiresInTheFuture, serializers.Serializer):
    """What a key may do (accounts/scopes.py), all three at once. Each left out, or null: no limit."""

    counters = _counters_field()
    actions = _actions_field()
    expires_at = _expires_at_field()


class ApiKeySerializer(_ExpiresInTheFuture, serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    prefix = serializers.CharField(read_only=True)
    counters = _counters_field()
    actions = _actions_field()
    expires_at = _expires_at_field()
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; only its hash is kept.")


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RegisteredSerializer(UserSerializer, TokenPairSerializer):
    pass


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)

    def validate(self, attrs):
        user = self.context["user"]
        if not user.check_password(attrs["old_password"]):
            raise serializers.ValidationError({"old_password": ["That is not your password."]})
        try:
            password_validation.validate_password(attrs["new_password"], user=user)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"new_password": list(exc.messages)}) from None
        return attrs
