"""A counter's name: the one rule every part of the project that names counters follows (the
counters themselves, an API key's scope, the Redis key layout, the URL patterns)."""

from django.core.validators import RegexValidator
from rest_framework import serializers

# incrementific/redis/keys.py relies on it: no brace, no colon, no `~`.
NAME_PATTERN = r"[A-Za-z0-9_.\-]{1,64}"

# A name of `.` or `..` alone is a path step to every HTTP client that follows RFC 3986: curl
# asks for /api/counters/.. as /api/, so such a counter could never be reached by its URL. The
# URL patterns still match them, for any created before they were refused.
validate_counter_name = RegexValidator(
    rf"\A(?!\.\.?\Z){NAME_PATTERN}\Z",
    "Use 1 to 64 characters: letters, digits, '_', '.' or '-', and not '.' or '..' alone.",
    code="invalid_name",
)


class CounterNameField(serializers.CharField):
    """A string of the name characters; a JSON number is not quietly turned into one."""

    def __init__(self, **kwargs):
        super().__init__(max_length=64, trim_whitespace=False, validators=[validate_counter_name], **kwargs)

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
