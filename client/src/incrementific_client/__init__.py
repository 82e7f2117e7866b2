"""incrementific's client: ``Client(url, api_key=...).next("builds").formatted``, exactly once."""

__version__ = "0.1.0"

from incrementific_client.client import Client, Counter, Entry, Period  # noqa: E402
from incrementific_client.errors import (  # noqa: E402
    AlreadyVoided,
    AuthenticationError,
    BadRequest,
    BelowIssued,
    Conflict,
    IdempotencyKeyReused,
    IncrementificError,
    LogKept,
    NotFound,
    Overflow,
    PermissionDenied,
    RateLimited,
    ScopeError,
    Unavailable,
)

__all__ = [
    "AlreadyVoided",
    "AuthenticationError",
    "BadRequest",
    "BelowIssued",
    "Client",
    "Conflict",
    "Counter",
    "Entry",
    "IdempotencyKeyReused",
    "IncrementificError",
    "LogKept",
    "NotFound",
    "Overflow",
    "Period",
    "PermissionDenied",
    "RateLimited",
    "ScopeError",
    "Unavailable",
]
