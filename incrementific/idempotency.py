"""The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header), read from a request.

A change sent with a key is made once: a retry of the same request with the same key gets the
first answer again, byte for byte, with `Idempotent-Replayed: true`, and changes nothing. The
key is 1 to 255 printable ASCII characters, sent bare or as a structured-field string
(`"8e03978e-..."`). Records are kept IDEMPOTENCY_KEY_SECONDS (default a day), per user; for a
counter's next and set, in the counter's own slot, checked and written by its own script
(counters/store.py), so a keyed `next` is one round trip as an unkeyed one is.
"""

import json
import re

from django.conf import settings
from rest_framework import exceptions

from counters import store

HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED = "Idempotent-Replayed"
_BARE = re.compile(r"[\x20-\x7e]{1,255}")
_QUOTED = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
MALFORMED = "Must be 1 to 255 printable ASCII characters, bare or as a quoted string."


def client_key(request) -> str | None:
    """The request's Idempotency-Key, or None; a malformed one is a 400 (nothing changed)."""
    # Django's request under DRF's: DRF's own proxies META through a failed attribute lookup,
    # which costs a `next` without a key about 1% of its instructions (BENCHMARKS.md).
    raw = getattr(request, "_request", request).META.get(HEADER)
    if raw is None:
        return None
    raw = raw.strip()
    quoted = _QUOTED.fullmatch(raw)
    key = re.sub(r'\\(["\\])', r"\1", quoted.group(1)) if quoted else raw
    if (not quoted and raw.startswith('"')) or not _BARE.fullmatch(key):
        raise exceptions.ValidationError({"Idempotency-Key": [MALFORMED]})
    return key


def of(request, **what) -> store.Idempotent | None:
    """The change's Idempotency-Key, if it was sent one, for the store: ``what`` is the request's
    validated input (a step, a value), which with its method and path says what it asked for."""
    key = client_key(request)
    if key is None:
        return None
    fingerprint = json.dumps([request.method, request.path_info, what], sort_keys=True, separators=(",", ":"))
    return store.Idempotent(key, fingerprint, settings.IDEMPOTENCY_KEY_SECONDS)


def mark(response, state: store.State):
    if state.replayed:
        response[REPLAYED] = "true"
    return response
