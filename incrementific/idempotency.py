"""The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header), read from a request.

A change sent with a key is made once: a retry of the same request with the same key gets the
first answer again, byte for byte, with `Idempotent-Replayed: true`, and changes nothing. The
key is 1 to 255 printable ASCII characters, sent bare or as a structured-field string
(`"8e03978e-..."`). Records are kept IDEMPOTENCY_KEY_SECONDS (default a day), per user; for a
counter's next and set, in the counter's own slot, checked and written by its own script
(counters/store.py), so a keyed `next` is one round trip as an unkeyed one is; for any other
change, by the verbs below, around it (:func:`idempotent_change`).
"""

import base64
import functools
import json
import re
import secrets
from dataclasses import dataclass, field

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.http import HttpResponse
from rest_framework import exceptions

from incrementific.redis import keys, run, scripts
from incrementific.redis.replies import Reply

HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED = "Idempotent-Replayed"
_BARE = re.compile(r"[\x20-\x7e]{1,255}")
_QUOTED = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
MALFORMED = "Must be 1 to 255 printable ASCII characters, bare or as a quoted string."


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before for another request; nothing changed."""


class IdempotencyKeyInProgress(Exception):
    """The first request with this Idempotency-Key is still going on; nothing changed."""


@dataclass(frozen=True)
class Idempotent:
    """A change sent with an Idempotency-Key: its record is kept for ``seconds`` in the owner's
    slot (see keys.idempotency), checked and written by the counter's own script, or by the
    verbs below for the changes that are not a counter's script."""

    key: str  # the client's key
    fingerprint: str  # what the request asked for (method, path, its input)
    seconds: int
    # This request's own: the attempts that one request makes (after a reservation or a restore)
    # go on where the first left off; another request with the same key waits (409).
    attempt: str = field(default_factory=lambda: secrets.token_hex(8))


def begin(owner_id: int, idempotent: Idempotent) -> bytes | None:
    """Hold the key for this request, or the answer kept for it (bytes, as finish() was given).
    Raises IdempotencyKeyReused or IdempotencyKeyInProgress."""
    record = keys.idempotency(owner_id, idempotent.key)
    reply = run(scripts.IDEMPOTENCY_BEGIN, [record], [idempotent.fingerprint, idempotent.attempt])
    if reply[0] == Reply.IDEMPOTENCY_KEY_REUSED:
        raise IdempotencyKeyReused()
    if reply[0] == Reply.IDEMPOTENCY_KEY_IN_PROGRESS:
        raise IdempotencyKeyInProgress()
    return reply[1] if reply[0] == Reply.REPLAYED else None


def finish(owner_id: int, idempotent: Idempotent, answer: bytes) -> None:
    """Keep the answer of a request that held its key, for idempotent.seconds."""
    record = keys.idempotency(owner_id, idempotent.key)
    run(scripts.IDEMPOTENCY_FINISH, [record], [idempotent.fingerprint, idempotent.attempt, answer, idempotent.seconds])


def release(owner_id: int, idempotent: Idempotent) -> None:
    """After a request that failed between its attempts (a 503, a 404): forget its hold."""
    run(scripts.IDEMPOTENCY_RELEASE, [keys.idempotency(owner_id, idempotent.key)], [idempotent.attempt])


def client_key(request) -> str | None:
    """The request's Idempotency-Key, or None; a malformed one is a 400 (nothing changed)."""
    # Django's request under DRF's: DRF's own proxies META through a failed attribute lookup,
    # which costs a `next` without a key about 1% of its instructions (BENCHMARKS.md).
    raw = getattr(request, "_request", request).META.get(HEADER)
    if raw is None:
        return None
    raw = raw.strip(" \t")  # HTTP's optional white space, and nothing else: schema.IDEMPOTENCY_KEY_PATTERN
    quoted = _QUOTED.fullmatch(raw)
    key = re.sub(r'\\(["\\])', r"\1", quoted.group(1)) if quoted else raw
    if (not quoted and raw.startswith('"')) or not _BARE.fullmatch(key):
        raise exceptions.ValidationError({"Idempotency-Key": [MALFORMED]})
    return key


# The browsable API's forms carry their key as this form field (static/web/browsable.js): an HTML
# form cannot send a header. A JSON body's field of that name means nothing.
BROWSABLE_FIELD = "_idempotency_key"


def of(request, **what) -> Idempotent | None:
    """The change's Idempotency-Key, if it was sent one, for the store: ``what`` is the request's
    validated input (a step, a value), which with its method and path says what it asked for."""
    key = client_key(request)
    if key is None and getattr(request, "stream", None) is not None:
        data = request.data
        if hasattr(data, "getlist"):  # a form
            sent = data.get(BROWSABLE_FIELD, "")
            key = sent if _BARE.fullmatch(sent) else None
    return _idempotent(request, key, what)


# The web app's forms carry a key of their own (a hidden field, new with each page), so that a
# double click or a form sent again makes its change once.
FORM_FIELD = "idempotency_key"


def of_form(request, **what) -> Idempotent | None:
    """The key a web app's form was sent with (see form_key()); a malformed one is ignored."""
    key = request.POST.get(FORM_FIELD, "")
    return _idempotent(request, key, what) if _BARE.fullmatch(key) else None


def form_key() -> str:
    return secrets.token_urlsafe(16)


def _idempotent(request, key: str | None, what: dict) -> Idempotent | None:
    if key is None:
        return None
    fingerprint = json.dumps(
        [request.method, request.path_info, what], sort_keys=True, separators=(",", ":"), default=str
    )
    return Idempotent(key, fingerprint, settings.IDEMPOTENCY_KEY_SECONDS)


def mark(response, state):
    if state.replayed:
        response[REPLAYED] = "true"
    return response


# Answers that changed nothing are not kept, so that a fixed request can be sent again with the
# same key (Stripe does the same for its validation errors).
NOT_KEPT = frozenset({400, 401, 403, 404, 405, 406, 413, 415, 429, 500, 503})
# What a kept answer carries besides its status and body.
KEPT_HEADERS = ("Content-Type", "Location")


def _sealer(key: str) -> Fernet:
    """Kept answers are encrypted with a key made from the client's Idempotency-Key, which the
    service keeps nowhere (the record's name holds its SHA-256): a new API key's answer holds the
    key itself, and Redis must never hold a usable credential (only its hash is kept)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"incrementific kept answer").derive(
        key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def idempotent_change(method):
    """For a DRF view's handler of a change that is not a counter's script (create, delete, a new
    API key): with an Idempotency-Key, the first request runs and its answer is kept (status,
    headers, body, byte for byte); a retry gets it again, with `Idempotent-Replayed: true`."""

    @functools.wraps(method)
    def handler(view, request, *args, **kwargs):
        idempotent = of(request, data=_plain(request.data))
        if idempotent is None:
            return method(view, request, *args, **kwargs)
        owner = request.auth.owner(revocation=True)  # accounts/caller.py
        kept = begin(owner, idempotent)
        if kept is not None:
            return _replay(_sealer(idempotent.key).decrypt(kept))
        try:
            response = view.finalize_response(request, method(view, request, *args, **kwargs), *args, **kwargs)
            if hasattr(response, "render"):  # a DRF Response (RenderNow's answers are rendered)
                response.render()
        except BaseException:
            release(owner, idempotent)
            raise
        if response.status_code in NOT_KEPT:
            release(owner, idempotent)
            return response
        answer = {
            "status": response.status_code,
            "headers": {name: response[name] for name in KEPT_HEADERS if name in response},
            "body": base64.b64encode(response.content).decode(),
        }
        finish(owner, idempotent, _sealer(idempotent.key).encrypt(json.dumps(answer).encode()))
        return response

    return handler


def _replay(sealed: bytes) -> HttpResponse:
    answer = json.loads(sealed)
    response = HttpResponse(base64.b64decode(answer["body"]), status=answer["status"])
    for name, value in answer["headers"].items():
        response[name] = value
    response[REPLAYED] = "true"
    return response


def _plain(data):
    """A request's parsed input as JSON can hold it (a form's QueryDict, lists and all), less
    what a form carries besides its input."""
    if hasattr(data, "lists"):
        return {
            name: values if len(values) != 1 else values[0]
            for name, values in data.lists()
            if name not in (BROWSABLE_FIELD, "csrfmiddlewaretoken")
        }
    return data
