"""incrementific's client: ``Client(url, api_key=...).next("builds").formatted``, exactly once."""

__version__ = "0.1.0"

from incrementific_client.client import Client, Counter, Period  # noqa: E402
from incrementific_client.errors import (  # noqa: E402
    AuthenticationError,
    BadRequest,
    Conflict,
    IdempotencyKeyReused,
    IncrementificError,
    NotFound,
    Overflow,
    PermissionDenied,
    RateLimited,
    ScopeError,
    Unavailable,
)

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "Client",
    "Conflict",
    "Counter",
    "IdempotencyKeyReused",
    "IncrementificError",
    "NotFound",
    "Overflow",
    "Period",
    "PermissionDenied",
    "RateLimited",
    "ScopeError",
    "Unavailable",
]
