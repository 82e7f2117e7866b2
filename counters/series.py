"""Series: a counter that numbers documents. One sequence per period, numbers in a shape.

A counter's three settings (fixed at create, but ``format`` may be changed):

- ``reset``: None (one sequence forever), ``yearly``, ``monthly`` or ``daily``. Each period is
  its own sequence, picked by the document's date (or today, in the counter's time zone).
- ``timezone``: an IANA name, where a period begins (default UTC).
- ``format``: None, or a template the number is printed in (``INV-{year}-{value:05}``).

Everything here is pure: no Redis, no SQL. The settings travel as one string (:meth:`Series.encoded`)
kept in the counter's Redis hash, so that the counter's script can tell a process whose idea of the
settings is out of date (counters/store.py), and a process keeps what it learnt in :data:`known`.
"""

import functools
import re
import threading
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError

RESETS = ("yearly", "monthly", "daily")
DEFAULT_TIMEZONE = "UTC"
FORMAT_MAX_LENGTH = 100
WIDTH_MAX = 20

# The stable codes of a bad setting or date (docs/api.md): the 400's `code`.
INVALID_FORMAT = "invalid_format"
UNKNOWN_TIMEZONE = "unknown_timezone"
INVALID_RESET = "invalid_reset"
INVALID_DATE = "invalid_date"
SETTING_FIXED = "setting_fixed"

_TOKEN = re.compile(r"\{([^{}]*)\}")
_WIDTH = re.compile(r"value:0([1-9][0-9]{0,2})")
# What compile_format() takes, as one regular expression for the OpenAPI schema (its length apart:
# maxLength). tests/test_series.py holds the two to the same answers. Written as one piece and
# then any number more, not as `(piece)+`: schemathesis folds maxLength into a `+` as `{1,100}`
# (which counts pieces, not characters) and loses the escape of a `}` on the way (ECMA refuses it).
_PIECE = r"(?:[^{}\x00-\x1f\x7f-\x9f]|[{][{]|[}][}]|[{](?:value|value:0(?:[1-9]|1[0-9]|20)|year|yy|month|day)[}])"
FORMAT_PATTERN = f"^{_PIECE}{_PIECE}*$"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TOKENS = {
    "year": lambda d: f"{d.year:04d}",
    "yy": lambda d: f"{d.year % 100:02d}",
    "month": lambda d: f"{d.month:02d}",
    "day": lambda d: f"{d.day:02d}",
}


@functools.cache
def timezones() -> list[str]:
    """Every IANA time zone name this machine knows (the tzdata package's at least), sorted."""
    return sorted(zoneinfo.available_timezones() | {DEFAULT_TIMEZONE})


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(timezones())


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def validate_timezone(name: str) -> str:
    """An IANA time zone name, exactly as the database spells it (``Europe/Paris``)."""
    if name not in _timezones():
        raise ValidationError(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Paris or UTC.", code=UNKNOWN_TIMEZONE
        )
    return name


def validate_reset(reset: str | None) -> str | None:
    if reset is not None and reset not in RESETS:
        raise ValidationError("Must be null, yearly, monthly or daily.", code=INVALID_RESET)
    return reset


def parse_date(text: str) -> date:
    """A document's date, ``2026-12-31`` (ISO 8601's extended calendar date, nothing else)."""
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{text} is not a date that exists.", code=INVALID_DATE) from None
    raise ValidationError("Must be a date as YYYY-MM-DD, such as 2026-12-31.", code=INVALID_DATE)


@functools.lru_cache(maxsize=4096)
def compile_format(template: str) -> tuple:
    """The template as parts: literal strings, ``(width,)`` for the value (0: as it is), and the
    date tokens' functions. Raises ValidationError (``invalid_format``) saying what is wrong."""

    def bad(message: str):
        return ValidationError(message, code=INVALID_FORMAT)

    if not 1 <= len(template) <= FORMAT_MAX_LENGTH:
        raise bad(f"Must be 1 to {FORMAT_MAX_LENGTH} characters (or null, for the value alone).")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in template):
        raise bad("Must not contain control characters (a line break, a tab, NUL).")
    parts: list = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if template.startswith("{{", i) or template.startswith("}}", i):
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            raise bad("Unbalanced '}' (write }} for a brace).")
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        token = _TOKEN.match(template, i)
        if token is None:
            raise bad("Unbalanced '{' (write {{ for a brace).")
        name = token.group(1)
        if literal:
            parts.append("".join(literal))
            literal = []
        if name == "value":
            parts.append((0,))
        elif width := _WIDTH.fullmatch(name):
            n = int(width.group(1))
            if not 1 <= n <= WIDTH_MAX:
                raise bad(f"The width in {{{name}}} must be from 1 to {WIDTH_MAX}.")
            parts.append((n,))
        elif name in _DATE_TOKENS:
            parts.append(_DATE_TOKENS[name])
        else:
            raise bad(f"Unknown token {{{name}}}: use {{value}}, {{value:0N}}, {{year}}, {{yy}}, {{month}} or {{day}}.")
        i = token.end()
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def validate_format(template: str | None) -> str | None:
    if template is not None:
        compile_format(template)
    return template


@dataclass(frozen=True)
class Series:
    """A counter's settings, and what follows from them: a date's period, a value's print."""

    reset: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    format: str | None = None
    # Every number recorded in SQL as it is handed out (counters/gapless.py), not taken in Redis.
    gapless: bool = False

    @classmethod
    def of(
        cls,
        reset: str | None = None,
        timezone: str = DEFAULT_TIMEZONE,
        format: str | None = None,
        gapless: bool = False,
    ) -> "Series":
        """The settings, as :data:`PLAIN` itself for the defaults (the calls test ``is PLAIN``)."""
        if reset is None and timezone == DEFAULT_TIMEZONE and format is None and not gapless:
            return PLAIN
        return cls(reset, timezone, format, gapless)

    def encoded(self) -> str:
        """The settings as the counter's Redis hash keeps them (``s``); '' for the defaults. A
        gapless counter's start with ``gapless|`` (a reset is never that), so that a process
        that takes it to be a fast counter learns otherwise from the counter's script."""
        if self is PLAIN or self == PLAIN:
            return ""
        text = f"{self.reset or ''}|{self.timezone}|{self.format or ''}"  # a format is never ''
        return _GAPLESS + text if self.gapless else text

    @classmethod
    def decode(cls, text: str) -> "Series":
        if not text:
            return PLAIN
        gapless = text.startswith(_GAPLESS)
        if gapless:
            text = text[len(_GAPLESS) :]
        reset, tz, template = text.split("|", 2)  # a format may hold '|'; the others do not
        return cls.of(reset or None, tz, template or None, gapless)

    def today(self) -> date:
        return datetime.now(zone(self.timezone)).date()

    def period(self, day: date) -> str | None:
        """The period ``day`` falls in: ``2026``, ``2026-12``, ``2026-12-31``, or None."""
        if self.reset is None:
            return None
        if self.reset == "yearly":
            return f"{day.year:04d}"
        if self.reset == "monthly":
            return f"{day.year:04d}-{day.month:02d}"
        return day.isoformat()

    def render(self, value: int, day: date | None) -> str:
        """The value as the document prints it (the value alone, without a format). ``day``:
        the document's date, for the date tokens (None: today in the counter's time zone)."""
        if self.format is None:
            return str(value)
        out = []
        for part in compile_format(self.format):
            if type(part) is str:
                out.append(part)
            elif type(part) is tuple:
                out.append(str(value).zfill(part[0]))
            else:
                out.append(part(day or self.today()))
        return "".join(out)

    def day_shown(self, period: str, today: date) -> date:
        """The date a period's value is printed with in a list of periods: today when the period
        holds today, else the period's last day."""
        if self.period(today) == period:
            return today
        if self.reset == "yearly":
            return date(int(period), 12, 31)
        if self.reset == "monthly":
            year, month = int(period[:4]), int(period[5:7])
            return date(year, 12, 31) if month == 12 else date(year, month + 1, 1) - timedelta(days=1)
        return date.fromisoformat(period)


PLAIN = Series()
_GAPLESS = "gapless|"


class Known:
    """What this process knows of each counter's settings, learnt from the counter's Redis hash
    (its script answers with them when the ones it was sent are not its own) or from SQL. A
    process that does not know a counter's settings sends none, which is right for a plain
    counter; a series costs its first call in a process one round trip more."""

    LIMIT = 10_000  # counters; past it, the process starts learning again

    def __init__(self):
        self._lock = threading.Lock()
        self._settings: dict[tuple[int, str], Series] = {}

    def get(self, owner_id: int, name: str) -> Series:
        return self._settings.get((owner_id, name), PLAIN)

    def learn(self, owner_id: int, name: str, series: Series) -> None:
        with self._lock:
            if series.encoded() == "":
                self._settings.pop((owner_id, name), None)
                return
            if len(self._settings) >= self.LIMIT:
                self._settings.clear()
            self._settings[(owner_id, name)] = series

    def clear(self) -> None:
        with self._lock:
            self._settings.clear()


known = Known()
