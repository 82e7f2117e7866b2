"""One JSON error shape for every API error: {"detail": "...", "code": "..."}, and for invalid
input also {"fields": {...}}. Domain exceptions are raised low (services, store) and
translated here, once.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, ProgrammingError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.ratelimit import RateLimited
from counters import store
from counters.services import (
    CounterAlreadyExists,
    CounterLimitReached,
    CounterNotFound,
    CounterOverflow,
    CounterOwnerMissing,
)
from counters.store import CounterStoreUnavailable


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _translate(exc: Exception) -> Exception:
    # DRF's own handler converts these two as well, but the reshaping below needs the DRF form.
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, store.TokenRevoked):
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
    if isinstance(exc, CounterStoreUnavailable):
        return ServiceUnavailable("Counter storage is unavailable, try again.", "counter_store_unavailable")
    # A bug (bad SQL, a broken constraint) stays a 500 with its traceback in the log; only a
    # database that cannot be reached or is failing is the client's "try again".
    if isinstance(exc, DatabaseError) and not isinstance(exc, DataError | IntegrityError | ProgrammingError):
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


def exception_handler(exc: Exception, context: dict):
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django answers with handler500 and logs the traceback
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("Invalid input.", "invalid", fields=fields)
    elif isinstance(exc.detail, dict) and "detail" in exc.detail:
        # simplejwt's InvalidToken and AuthenticationFailed carry a dict with detail and code.
        response.data = error_body(exc.detail["detail"], exc.detail.get("code", exc.default_code))
    else:
        code = exc.get_codes()
        response.data = error_body(exc.detail, code if isinstance(code, str) else exc.default_code)
    return response
