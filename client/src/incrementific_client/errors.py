"""The API's errors as exceptions, one class per kind, named by the API's error codes."""

from typing import Optional


class IncrementificError(Exception):
    """An answer the service refused, or no answer in time. ``code`` is the API's error code
    (docs/api.md), ``status`` the HTTP status (None when no answer came), ``request_id`` the
    service's X-Request-ID for that answer (quote it when you report a problem)."""

    def __init__(self, code: str, message: str, status: Optional[int] = None, request_id: Optional[str] = None):
        super().__init__(f"{code}: {message}" + (f" (request id {request_id})" if request_id else ""))
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id


class BadRequest(IncrementificError):
    """400: the input was refused (``invalid``, ``invalid_format``, ``invalid_date`` ...); nothing changed."""


class AuthenticationError(IncrementificError):
    """401: no credentials, or credentials the service does not take (expired, revoked)."""


class PermissionDenied(IncrementificError):
    """403: not allowed (``permission_denied``, ``counter_limit``)."""


class ScopeError(PermissionDenied):
    """403 ``api_key_scope``: the API key may not do this to this counter."""


class NotFound(IncrementificError):
    """404: no such counter (or not yours)."""


class Conflict(IncrementificError):
    """409: ``counter_exists``, or another conflict that retrying will not solve."""


class Overflow(Conflict):
    """409 ``counter_overflow``: the value would pass 2**63-1; nothing changed."""


class AlreadyVoided(Conflict):
    """409 ``already_voided``: the number of a gapless counter is voided already."""


class BelowIssued(Conflict):
    """409 ``below_issued``: a gapless counter is only set up, above the numbers it handed out."""


class LogKept(Conflict):
    """409 ``log_kept``: a gapless counter that handed out numbers is not deleted (its log stays)."""


class IdempotencyKeyReused(IncrementificError):
    """422: the Idempotency-Key was sent before with another request."""


class RateLimited(IncrementificError):
    """429, still, when the deadline left no time to wait out its Retry-After."""


class Unavailable(IncrementificError):
    """503 (Redis or the database), 502, 504, a dropped connection or a timeout, still so after
    every retry the deadline allowed. A change may or may not have been made: call again with
    the same ``idempotency_key`` to find out without making it twice."""

    def __init__(self, *args, idempotency_key: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.idempotency_key = idempotency_key


_BY_CODE = {
    "already_voided": AlreadyVoided,
    "below_issued": BelowIssued,
    "log_kept": LogKept,
    "api_key_scope": ScopeError,
    "counter_overflow": Overflow,
    "idempotency_key_reused": IdempotencyKeyReused,
    "throttled": RateLimited,
}
_BY_STATUS = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: IdempotencyKeyReused,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def error_for(status: int, code: str, message: str, request_id: Optional[str]) -> IncrementificError:
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, IncrementificError)
    return cls(code, message, status, request_id)
