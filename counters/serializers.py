import re
from functools import lru_cache

from django.http import QueryDict
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from counters.models import MAX_VALUE, CounterChange
from incrementific.names import CounterNameField

_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only; [0-9] never matches other scripts' digits


class StrictIntegerField(serializers.Field):
    """A JSON integer, or a string of ASCII digits in a form post; nothing else.

    DRF's IntegerField takes "1.0", " 5", "+5", "1e3" and True; a counter API must not guess.
    """

    default_error_messages = {
        "invalid": "Must be a whole number (a JSON integer, or ASCII digits in a form).",
        "range": "Must be from {min_value} to {max_value}.",
    }

    def __init__(self, *, min_value: int, max_value: int = MAX_VALUE, **kwargs):
        self.min_value = min_value
        self.max_value = max_value
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if isinstance(data, int) and not isinstance(data, bool):
            value = data
        elif isinstance(data, str) and isinstance(self.root.initial_data, QueryDict):
            if not data.isascii() or not data.isdigit():
                self.fail("invalid")
            if not _DIGITS.fullmatch(data):
                self.fail("range", min_value=self.min_value, max_value=self.max_value)
            value = int(data)
        else:
            self.fail("invalid")
        if not self.min_value <= value <= self.max_value:
            self.fail("range", min_value=self.min_value, max_value=self.max_value)
        return value

    def to_representation(self, value) -> int:
        return value


class CounterCreateSerializer(serializers.Serializer):
    name = CounterNameField()
    value = StrictIntegerField(min_value=0, required=False, default=0)


_MISSING = object()


class WholeNumberBody(serializers.Serializer):
    """A body of one whole number. :meth:`validated` takes the usual one, a JSON object whose
    field is an int in range (or, where the field may be left out, without it), without making a
    serializer, which deep-copies its fields each time; anything else goes through the serializer,
    and gets its exact errors. tests/test_serializers.py holds the two to the same answers."""

    @classmethod
    def validated(cls, data) -> dict:
        ((name, field),) = cls._declared_fields.items()
        if type(data) is dict:
            value = data.get(name, _MISSING)
            if type(value) is int and field.min_value <= value <= field.max_value:
                return {name: value}
            if value is _MISSING and not field.required:
                return {name: field.default}
        serializer = cls(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class CounterSetSerializer(WholeNumberBody):
    value = StrictIntegerField(min_value=0)


class CounterNextSerializer(WholeNumberBody):
    step = StrictIntegerField(min_value=1, required=False, default=1)


class CounterSerializer(serializers.Serializer):
    """A counter as the API shows it. Documents the shape; counter_data renders it."""

    name = CounterNameField()
    value = StrictIntegerField(min_value=0)
    created_at = serializers.DateTimeField()
    url = serializers.URLField()


@lru_cache(maxsize=1)
def _counters_path() -> str:
    return reverse("counter-list") + "/"


def counters_url(request) -> str:
    """The absolute URL of the request's counter list, which each counter's URL extends: from the
    scheme and the (validated) host, without build_absolute_uri()'s splitting and quoting, since a
    name is URL-safe characters only. Built once for a page of counters."""
    return f"{request.scheme}://{request.get_host()}{_counters_path()}"


def counter_data(base: str, *, name: str, value: int, created: str) -> dict:
    """The public shape of a counter. A plain function: the hot path renders one per request,
    and builds its URL on ``base``, the request's :func:`counters_url`, instead of reversing
    the route each time."""
    return {"name": name, "value": value, "created_at": created, "url": base + name}


class ChangeActorSerializer(serializers.Serializer):
    user = serializers.CharField(allow_null=True, help_text="Who: the owner, or a staff user in the admin.")
    api_key = serializers.DictField(
        child=serializers.CharField(), allow_null=True, help_text="The API key it came with: its name and prefix."
    )


class CounterChangeSerializer(serializers.ModelSerializer):
    """One change to a counter other than `next` (counters/history.py)."""

    by = serializers.SerializerMethodField()

    class Meta:
        model = CounterChange
        fields = ["kind", "old_value", "new_value", "by", "surface", "at", "request_id"]

    @extend_schema_field(ChangeActorSerializer)
    def get_by(self, change: CounterChange) -> dict:
        key = {"name": change.api_key_name, "prefix": change.api_key_prefix} if change.api_key_prefix else None
        return {"user": change.actor.username if change.actor else None, "api_key": key}
