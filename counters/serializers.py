import json
import re
from functools import lru_cache

from django.http import QueryDict
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from counters import gapless, series
from counters.models import MAX_VALUE, CounterChange, IssuedValue
from counters.series import FORMAT_MAX_LENGTH, RESETS
from counters.store import State
from incrementific.names import CounterNameField
from incrementific.schema import NOT_BLANK

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


class StrictCharField(serializers.CharField):
    """A JSON string (or a form's); DRF's CharField would take 5 and make it "5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "format": "date", "example": "2026-12-31"})
class DocumentDateField(serializers.Field):
    """The document's date, ``2026-12-31``: it picks a series' period and fills its date tokens."""

    default_error_messages = {"invalid": "Must be a date as YYYY-MM-DD, such as 2026-12-31."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(self.error_messages["invalid"], code=series.INVALID_DATE)
        return series.parse_date(data)

    def to_representation(self, value):
        return value.isoformat()


class SettingChoiceField(serializers.ChoiceField):
    """One of a setting's choices, as a JSON string; anything else is the setting's own 400 code."""

    def __init__(self, choices, *, code: str, message: str, **kwargs):
        self.code, self.message = code, message
        super().__init__(choices, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            raise serializers.ValidationError(self.message.format(data=data), code=self.code)
        return self.choice_strings_to_values[data]


def reset_field(**kwargs):
    return SettingChoiceField(
        RESETS,
        code=series.INVALID_RESET,
        message="Must be null, yearly, monthly or daily.",
        allow_null=True,
        help_text="null (one sequence forever), or " + ", ".join(RESETS) + ": a sequence per period.",
        **kwargs,
    )


def timezone_field(**kwargs):
    return SettingChoiceField(
        series.timezones(),
        code=series.UNKNOWN_TIMEZONE,
        message="Unknown time zone {data!r}: use an IANA name such as Europe/Paris or UTC.",
        help_text="An IANA time zone name: where a period begins, and what today is.",
        **kwargs,
    )


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "minLength": 1,
        "maxLength": FORMAT_MAX_LENGTH,
        "pattern": series.FORMAT_PATTERN,
        "example": "INV-{year}-{value:05}",
    }
)
class FormatField(StrictCharField):
    """A format template (counters/series.py), or null."""

    def __init__(self, **kwargs):
        super().__init__(
            allow_null=True,
            trim_whitespace=False,
            help_text=(
                f"null, or a template of at most {FORMAT_MAX_LENGTH} characters: {{value}}, {{value:0N}} (N from "
                "1 to 20), {year}, {yy}, {month}, {day}, and {{ or }} for a brace."
            ),
            **kwargs,
        )

    def get_value(self, dictionary):
        value = super().get_value(dictionary)
        # A form cannot send null: an empty field is null there (in JSON, '' is refused).
        return None if value == "" and html.is_html_input(dictionary) else value

    def run_validation(self, data=serializers.empty):
        if data == "":  # the template's own error, not DRF's "may not be blank"
            series.validate_format(data)
        return series.validate_format(super().run_validation(data))


def format_field(**kwargs):
    return FormatField(**kwargs)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false (a form's checkbox: "true", "on" or "false"); DRF's BooleanField
    would take 1, "yes" and "t" too."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and isinstance(self.root.initial_data, QueryDict):
            if data in ("true", "on"):
                return True
            if data in ("false", ""):
                return False
        self.fail("invalid", input=data)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "A JSON object of at most 2 KiB, kept with the number (a gapless counter only).",
        "example": {"invoice": "A-1043"},
    }
)
class MetadataField(serializers.Field):
    """What a request says of the number it takes (a gapless counter's log keeps it)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and isinstance(self.root.initial_data, QueryDict):
            try:  # a form's field holds the object as JSON text
                data = json.loads(data)
            except ValueError:
                pass  # refused below, as any other value that is not an object
        problem = gapless.metadata_errors(data)
        if problem is not None:
            raise serializers.ValidationError(problem, code=gapless.METADATA_INVALID)
        return data

    def to_representation(self, value):
        return value


class CounterCreateSerializer(serializers.Serializer):
    name = CounterNameField()
    value = StrictIntegerField(min_value=0, required=False, default=0)
    reset = reset_field(required=False, default=None)
    timezone = timezone_field(required=False, default=series.DEFAULT_TIMEZONE)
    format = format_field(required=False, default=None)
    gapless = StrictBooleanField(
        required=False,
        default=False,
        help_text="Every number recorded as it is handed out, none skipped, whatever fails (fixed once created).",
    )

    def series(self) -> series.Series:
        data = self.validated_data
        return series.Series.of(data["reset"], data["timezone"], data["format"], data["gapless"])


_MISSING = object()


class WholeNumberBody(serializers.Serializer):
    """A body of one whole number (``NUMBER``) and perhaps a document's date. :meth:`validated`
    takes the usual one, a JSON object with the number as an int in range (or, where it may be
    left out, without it) and nothing else it knows of, without making a serializer, which
    deep-copies its fields each time; anything else goes through the serializer, and gets its
    exact errors. tests/test_serializers.py holds the two to the same answers."""

    NUMBER: str

    @classmethod
    def validated(cls, data) -> dict:
        if type(data) is dict and "date" not in data and "metadata" not in data:
            field = cls._declared_fields[cls.NUMBER]
            value = data.get(cls.NUMBER, _MISSING)
            if type(value) is int and field.min_value <= value <= field.max_value:
                return {cls.NUMBER: value}
            if value is _MISSING and not field.required:
                return {cls.NUMBER: field.default}
        serializer = cls(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


DATE_HELP = "The document's date: picks a series' period (default: today in the counter's time zone)."


class CounterSetSerializer(WholeNumberBody):
    NUMBER = "value"
    value = StrictIntegerField(min_value=0)
    date = DocumentDateField(required=False, help_text=DATE_HELP)
    format = format_field(required=False)  # read by the view (counters/views.py), documented here


class CounterNextSerializer(WholeNumberBody):
    NUMBER = "step"
    step = StrictIntegerField(min_value=1, required=False, default=1)
    date = DocumentDateField(required=False, help_text=DATE_HELP)
    metadata = MetadataField(required=False)


class CounterPatchSerializer(serializers.Serializer):
    """A PATCH: a `value` sets the counter (of the period of `date`), a `format` alone changes
    how it prints, and nothing changes nothing."""

    value = StrictIntegerField(min_value=0, required=False)
    date = DocumentDateField(required=False, help_text=DATE_HELP)
    format = format_field(required=False)


class CounterSettingsSerializer(CounterPatchSerializer):
    """A PUT or PATCH that names a setting, or a PATCH without a value. `reset` and `timezone`
    are not in the schema (they cannot change), but a body may repeat them as they are: what a
    client that sends back what it read does."""

    reset = reset_field(required=False)
    timezone = timezone_field(required=False)


class CounterSerializer(serializers.Serializer):
    """A counter as the API shows it. Documents the shape; counter_data renders it."""

    name = CounterNameField()
    value = StrictIntegerField(min_value=0)
    formatted = serializers.CharField(help_text="The value as the format prints it (the value alone without one).")
    period = serializers.CharField(
        allow_null=True, help_text="The period the value is of (2026, 2026-12, 2026-12-31); null without a reset."
    )
    reset = serializers.ChoiceField(choices=RESETS, allow_null=True)
    timezone = serializers.CharField()
    format = serializers.CharField(allow_null=True)
    gapless = serializers.BooleanField(help_text="Every number recorded as it is handed out (counters' log: values).")
    created_at = serializers.DateTimeField()
    url = serializers.URLField()


class CounterPeriodSerializer(serializers.Serializer):
    """One period of a series that has a value."""

    period = serializers.CharField()
    value = StrictIntegerField(min_value=0)
    formatted = serializers.CharField(
        help_text="As the format prints the value, dated today in the current period, else on its last day."
    )


@lru_cache(maxsize=1)
def _counters_path() -> str:
    return reverse("counter-list") + "/"


def counters_url(request) -> str:
    """The absolute URL of the request's counter list, which each counter's URL extends: from the
    scheme and the (validated) host, without build_absolute_uri()'s splitting and quoting, since a
    name is URL-safe characters only. Built once for a page of counters."""
    return f"{request.scheme}://{request.get_host()}{_counters_path()}"


def counter_data(base: str, name: str, state: State) -> dict:
    """The public shape of a counter. A plain function: the hot path renders one per request,
    and builds its URL on ``base``, the request's :func:`counters_url`, instead of reversing
    the route each time."""
    settings = state.series
    if settings is series.PLAIN:
        value = state.value
        return {
            "name": name,
            "value": value,
            "formatted": str(value),
            "period": None,
            "reset": None,
            "timezone": "UTC",
            "format": None,
            "gapless": False,
            "created_at": state.created,
            "url": base + name,
        }
    return {
        "name": name,
        "value": state.value,
        "formatted": state.formatted,
        "period": state.period,
        "reset": settings.reset,
        "timezone": settings.timezone,
        "format": settings.format,
        "gapless": settings.gapless,
        "created_at": state.created,
        "url": base + name,
    }


class ChangeActorSerializer(serializers.Serializer):
    user = serializers.CharField(allow_null=True, help_text="Who: the owner, or a staff user in the admin.")
    api_key = serializers.DictField(
        child=serializers.CharField(), allow_null=True, help_text="The API key it came with: its name and prefix."
    )


class CounterChangeSerializer(serializers.ModelSerializer):
    """One change to a counter other than `next` (counters/history.py)."""

    by = serializers.SerializerMethodField()
    period = serializers.SerializerMethodField()
    old_format = serializers.SerializerMethodField()
    new_format = serializers.SerializerMethodField()

    class Meta:
        model = CounterChange
        fields = [
            "kind",
            "period",
            "old_value",
            "new_value",
            "old_format",
            "new_format",
            "by",
            "surface",
            "at",
            "request_id",
        ]

    def get_period(self, change: CounterChange) -> str | None:
        """The period of a series the change was in; null for a counter without periods."""
        return change.period or None

    def get_old_format(self, change: CounterChange) -> str | None:
        """A format change's format before (null: the value alone, or not a format change)."""
        return change.old_format or None

    def get_new_format(self, change: CounterChange) -> str | None:
        """A format change's format after (null: the value alone, or not a format change)."""
        return change.new_format or None

    @extend_schema_field(ChangeActorSerializer)
    def get_by(self, change: CounterChange) -> dict:
        key = {"name": change.api_key_name, "prefix": change.api_key_prefix} if change.api_key_prefix else None
        return {"user": change.actor.username if change.actor else None, "api_key": key}


def _actor(user, key_name: str, key_prefix: str) -> dict:
    key = {"name": key_name, "prefix": key_prefix} if key_prefix else None
    return {"user": user.username if user else None, "api_key": key}


class IssuedValueSerializer(serializers.ModelSerializer):
    """One number of a gapless counter's log (counters/gapless.py)."""

    period = serializers.SerializerMethodField()
    issued_by = serializers.SerializerMethodField()
    voided_by = serializers.SerializerMethodField()
    metadata = serializers.JSONField(allow_null=True, help_text="What the request that took it said of it.")
    void_reason = serializers.SerializerMethodField()

    class Meta:
        model = IssuedValue
        fields = [
            "value",
            "period",
            "formatted",
            "status",
            "issued_at",
            "issued_by",
            "surface",
            "request_id",
            "metadata",
            "voided_at",
            "voided_by",
            "void_reason",
        ]

    def get_period(self, entry: IssuedValue) -> str | None:
        """The period of a series (null without a reset)."""
        return entry.period or None

    @extend_schema_field(ChangeActorSerializer)
    def get_issued_by(self, entry: IssuedValue) -> dict:
        return _actor(entry.issued_by, entry.api_key_name, entry.api_key_prefix)

    @extend_schema_field(ChangeActorSerializer(allow_null=True))
    def get_voided_by(self, entry: IssuedValue) -> dict | None:
        if entry.status != IssuedValue.Status.VOIDED:
            return None
        return _actor(entry.voided_by, entry.voided_by_key_name, entry.voided_by_key_prefix)

    def get_void_reason(self, entry: IssuedValue) -> str | None:
        """Why it was voided (null while it is issued); "set" for a number a set passed over."""
        return entry.void_reason if entry.status == IssuedValue.Status.VOIDED else None


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": gapless.REASON_MAX_LENGTH,
        "pattern": NOT_BLANK,
    }
)
class ReasonField(StrictCharField):
    """Why a number is voided: 1 to 500 characters as sent (nothing trimmed, so that the length
    the schema states is the one checked), not only white space."""

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=gapless.REASON_MAX_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.strip():
            raise serializers.ValidationError("Give a reason, not only white space.", code="blank")
        return value


class VoidSerializer(serializers.Serializer):
    reason = ReasonField(help_text="Why the number could not be used.")
    date = DocumentDateField(required=False, help_text="A series': a date in the number's period (default today).")
