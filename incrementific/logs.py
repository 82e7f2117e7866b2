"""Logs an operator can follow: every line written while serving a request carries its request
id, and LOG_FORMAT=json writes every line (gunicorn's access log included) as one JSON object.

The JSON comes from python-json-logger rather than a formatter of our own: it renders any
record's extras, escapes what it must, and is what log shippers expect; structlog would ask every
module to log through it. The request id lives in a context variable set by the WSGI application
(incrementific/wsgi.py), which also puts it on every answer as `X-Request-ID`.
"""

import logging
import os
import re
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="-")

# A caller's own id is kept when it is sane: at most 200 of these characters.
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


def new_id(sent: str | None) -> str:
    """The caller's id when it is sane, else a new random one (128 bits, in hex)."""
    return sent if sent is not None and SANE_ID.fullmatch(sent) else os.urandom(16).hex()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class JsonFormatter(_JsonFormatter):
    """python-json-logger's, with gunicorn's access lines split into their fields: gunicorn
    logs them with its atoms as the record's args (`h`, `m`, `U`, `s`, `D`, ...)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", JSON_RENAMES)
        super().__init__(JSON_FIELDS, *args, **kwargs)

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        atoms = record.args if record.name == "gunicorn.access" and isinstance(record.args, dict) else None
        if atoms:
            log_record["request_id"] = atoms.get("{x-request-id}o") or log_record.get("request_id", "-")
            log_record["method"] = atoms.get("m")
            log_record["path"] = atoms.get("U")
            log_record["status"] = int(atoms["s"]) if str(atoms.get("s", "")).isdigit() else atoms.get("s")
            log_record["duration_seconds"] = round(int(atoms.get("D", 0)) / 1_000_000, 6)
            log_record["remote"] = atoms.get("h")
