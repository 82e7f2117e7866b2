"""Settings from the environment, read the way people write them, and refused in one line.

settings.py, gunicorn.conf.py, serve.py (`make run`) and manage.py all read the environment through
these helpers, so `DEBUG=off` means the same everywhere. A value they cannot read raises
:class:`SettingError`; the entry points turn it into one line on stderr and an exit status of 2,
before any server starts (:func:`exit_on_bad_setting`).
"""

import os
import sys
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# django-environ's and environs' spellings, in any case.
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class SettingError(ImproperlyConfigured):
    """A setting that is missing or cannot be read; its message is one line for a person."""


def envbool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise SettingError(
        f"{name}={value!r} is not a boolean: use 1, true, yes or on for yes, 0, false, no or off for no (any case)"
    )


def envint(name: str, default: int, minimum: int | None = None) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise SettingError(f"{name}={value!r} is too small: it must be at least {minimum}")
    return number


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envaddresses(name: str) -> list[tuple[str, int]]:
    """Comma-separated `host:port` pairs (`10.0.0.5:26379,[::1]:26379`), each port 1 to 65535."""
    addresses = []
    for item in envlist(name):
        host, _, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingError(f"{name}: {item!r} is not host:port (write 10.0.0.5:26379, or [::1]:26379)")
        addresses.append((host, int(port)))
    return addresses


def envorigins(name: str) -> list[str]:
    """Comma-separated origins (`https://app.example.com`, `http://localhost:5173`), or `*` alone."""
    origins = envlist(name)
    if origins == ["*"]:
        return origins
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
            raise SettingError(
                f"{name}: {origin!r} is not an origin: write scheme://host[:port] with no path "
                "(https://app.example.com), or * alone for any origin"
            )
    return origins


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip() or default
    if value not in choices:
        raise SettingError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


@contextmanager
def exit_on_bad_setting(program: str = "incrementific"):
    """Inside it, a setting that cannot be read ends the process with one line and status 2."""
    try:
        yield
    except ImproperlyConfigured as exc:
        print(f"{program}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def load_settings(program: str = "incrementific") -> None:
    """Import the Django settings module now (it reads the environment), so that a bad value
    stops the caller with one line instead of a traceback in the first request."""
    import importlib

    with exit_on_bad_setting(program):
        importlib.import_module(os.environ.get("DJANGO_SETTINGS_MODULE", "incrementific.settings"))
