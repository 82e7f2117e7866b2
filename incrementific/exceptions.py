"""One JSON error shape per surface. The API's: {"detail": "...", "code": "..."}, and for invalid
input also {"fields": {...}}. The prototype's (/v1 and its bare paths): {"message": "..."}, or a
JSON:API {"errors": [...]} for a client that asks for JSON:API. Domain exceptions are raised low
(services, store) and translated here, once; the errors that Django and the middleware answer
outside DRF (an unknown path, a crash, an oversized body) take the same shapes through
:func:`error_response`, and the same compact JSON as DRF's renderer.
"""

import json

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, ProgrammingError
from django.http import Http404, HttpResponse
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.authentication import unchecked_caller_first
from accounts.ratelimit import RateLimited
from accounts.scopes import ScopeDenied
from accounts.store import TokenRevoked
from counters import gapless, series, store
from counters.services import (
    CounterAlreadyExists,
    CounterLimitReached,
    CounterNotFound,
    CounterOverflow,
    CounterOwnerMissing,
)
from incrementific import idempotency, metrics, surfaces
from incrementific.redis import CounterStoreUnavailable
from incrementific.rendering import PlainTextRenderer

JSON_API = "application/vnd.api+json"

# Invalid input whose every error is one of these answers with that code instead of `invalid`,
# so that a client can tell them apart without reading messages (docs/api.md lists them).
NAMED_INPUT_CODES = frozenset(
    [
        series.INVALID_FORMAT,
        series.UNKNOWN_TIMEZONE,
        series.INVALID_RESET,
        series.INVALID_DATE,
        series.SETTING_FIXED,
        gapless.METADATA_INVALID,
        gapless.NOT_GAPLESS,
    ]
)


def _input_code(exc: exceptions.ValidationError) -> str:
    codes = set()
    pending = [exc.get_codes()]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        else:
            codes.add(item)
    return codes.pop() if len(codes) == 1 and codes <= NAMED_INPUT_CODES else "invalid"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


# What each action is, in "This API key may not ..." (accounts/scopes.py).
_SCOPE_VERBS = {
    "read": "read",
    "next": "take the next value of",
    "set": "set",
    "create": "create",
    "delete": "delete",
}


def _scope_denied(exc: ScopeDenied) -> exceptions.PermissionDenied:
    what = "counters" if exc.name is None else f"the counter {exc.name}"
    return exceptions.PermissionDenied(f"This API key may not {_SCOPE_VERBS[exc.action]} {what}.", "api_key_scope")


def _translate(exc: Exception) -> Exception:
    # DRF's own handler converts these two as well, but the reshaping below needs the DRF form.
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, ScopeDenied):
        return _scope_denied(exc)
    if isinstance(exc, TokenRevoked):
        return exceptions.AuthenticationFailed("Token has been revoked.", "token_revoked")
    if isinstance(exc, RateLimited | store.RateLimited):
        return exceptions.Throttled(wait=exc.retry_after)
    if isinstance(exc, CounterLimitReached):
        return exceptions.PermissionDenied(
            f"You have {settings.MAX_COUNTERS_PER_USER} counters, the most one account may have.", "counter_limit"
        )
    if isinstance(exc, CounterNotFound):
        return exceptions.NotFound()
    if isinstance(exc, CounterAlreadyExists):
        return Conflict("A counter with this name already exists.", "counter_exists")
    if isinstance(exc, CounterOwnerMissing):
        return exceptions.AuthenticationFailed("User not found.", "user_not_found")
    if isinstance(exc, CounterOverflow):
        return Conflict("The value would pass 9223372036854775807; nothing changed.", "counter_overflow")
    if isinstance(exc, gapless.NotGapless):  # its log asked of a counter that keeps none
        return Conflict("This counter is not gapless: it keeps no log of its numbers.", gapless.NOT_GAPLESS)
    if isinstance(exc, gapless.NotIssued):
        return exceptions.NotFound("This number was not handed out (in that period).")
    if isinstance(exc, gapless.AlreadyVoided):
        return Conflict("This number is voided already.", gapless.ALREADY_VOIDED)
    if isinstance(exc, gapless.BelowIssued):
        return Conflict(
            f"Numbers up to {exc.issued} were handed out: a gapless counter is only set up.", gapless.BELOW_ISSUED
        )
    if isinstance(exc, gapless.GapTooLarge):
        return Conflict(
            f"A gapless counter records each number a set passes over: at most {gapless.RECORDS_MAX:,} at once; "
            "nothing changed.",
            gapless.GAP_TOO_LARGE,
        )
    if isinstance(exc, gapless.StepTooLarge):
        return Conflict(
            f"A gapless counter records each number it hands out: a step of at most {gapless.RECORDS_MAX:,}; "
            "nothing changed.",
            gapless.STEP_TOO_LARGE,
        )
    if isinstance(exc, gapless.LogKept):
        return Conflict(
            "This gapless counter handed out numbers: it is not deleted, so that its log is kept "
            "(an administrator can delete it in the admin).",
            gapless.LOG_KEPT,
        )
    if isinstance(exc, idempotency.IdempotencyKeyReused):
        return Unprocessable(
            "This Idempotency-Key was sent before with another request; nothing changed.", "idempotency_key_reused"
        )
    if isinstance(exc, idempotency.IdempotencyKeyInProgress):
        return Conflict(
            "The first request with this Idempotency-Key is still being answered; try again.",
            "idempotency_key_in_progress",
        )
    if isinstance(exc, CounterStoreUnavailable):
        return ServiceUnavailable("Counter storage is unavailable, try again.", "counter_store_unavailable")
    # A bug (bad SQL, a broken constraint) stays a 500 with its traceback in the log; only a
    # database that cannot be reached or is failing is the client's "try again".
    if isinstance(exc, DatabaseError) and not isinstance(exc, DataError | IntegrityError | ProgrammingError):
        metrics.error("database", type(exc).__name__)
        return ServiceUnavailable("The database is unavailable, try again.", "database_unavailable")
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return exc


def describe(exc: Exception) -> exceptions.APIException | None:
    """The API's answer to a domain or dependency error (status, message, code), for the pages
    of the web app to say the same thing; None for an exception the API would not expect."""
    translated = _translate(exc)
    return translated if isinstance(translated, exceptions.APIException) else None


def error_body(detail, code: str, **extra) -> dict:
    return {"detail": str(detail), "code": str(code), **extra}


def prototype_error_body(status: int, detail: str, code: str, *, json_api: bool = False) -> dict:
    """The prototype's error shape, `{"message"}`, or JSON:API's `{"errors": [...]}`."""
    if json_api:
        return {"errors": [{"status": str(status), "code": code, "detail": detail}]}
    return {"message": detail}


def render_json(data) -> bytes:
    """JSON as DRF's JSONRenderer writes it (compact, UTF-8), for the answers made outside DRF."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(request, status: int, detail: str, code: str) -> HttpResponse:
    """An error answered outside DRF (Django's handlers, the middleware), in the request's surface's shape."""
    if surfaces.surface(request.path_info) == surfaces.V1:
        json_api = JSON_API in request.headers.get("Accept", "")
        body = prototype_error_body(status, detail, code, json_api=json_api)
        content_type = JSON_API if json_api else "application/json"
    else:
        body, content_type = error_body(detail, code), "application/json"
    return HttpResponse(render_json(body), content_type=content_type, status=status)


def exception_handler(exc: Exception, context: dict):
    request = context.get("request")
    if request is not None:
        first = unchecked_caller_first(request, exc)
        if first is not exc and isinstance(first, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            first.auth_header = context["view"].get_authenticate_header(request)  # as DRF's handle_exception
        exc = first
    exc = _translate(exc)
    if request is not None and isinstance(getattr(request, "accepted_renderer", None), PlainTextRenderer):
        # `Accept: text/plain` is for the value; an error keeps its JSON body (and says so).
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django answers with handler500 and logs the traceback
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("Invalid input.", _input_code(exc), fields=fields)
    elif isinstance(exc.detail, dict) and "detail" in exc.detail:
        # simplejwt's InvalidToken and AuthenticationFailed carry a dict with detail and code.
        response.data = error_body(exc.detail["detail"], exc.detail.get("code", exc.default_code))
    else:
        code = exc.get_codes()
        response.data = error_body(exc.detail, code if isinstance(code, str) else exc.default_code)
    return response
