"""What the pages of the web app share with each other and with the API.

A page validates a form post with the API's own serializer (so the rules and the messages are
the API's), calls the same services, and answers a failure of a dependency or a limit with the
message and status the API would give, as a page.
"""

from functools import wraps

from django.db import DatabaseError
from django.shortcuts import render
from rest_framework import exceptions

from accounts.ratelimit import RateLimited
from counters import store
from incrementific import idempotency
from incrementific.exceptions import describe

# The pages load their own script and style sheet and nothing else, inline or from elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

_FAILURES = (
    store.CounterStoreUnavailable,
    DatabaseError,
    RateLimited,
    store.RateLimited,
    idempotency.IdempotencyKeyReused,
    idempotency.IdempotencyKeyInProgress,
)


def validated(serializer_class, data, **kwargs) -> tuple[dict | None, dict[str, list[str]]]:
    """The serializer's validated data and no errors, or None and its messages by field (a
    form shows each next to its input; ``non_field_errors`` above the form)."""
    serializer = serializer_class(data=data, **kwargs)
    if serializer.is_valid():
        return serializer.validated_data, {}
    return None, {field: [str(message) for message in messages] for field, messages in serializer.errors.items()}


def page(view):
    """A page of the web app: its security policy, and the API's answer to an outage or a
    limit (503, 429 with Retry-After) as a page instead of a traceback."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            response = view(request, *args, **kwargs)
        except _FAILURES as exc:
            problem = describe(exc)
            if problem is None:
                raise  # a bug, not an outage: Django's 500 and a traceback in the log
            response = render(request, "web/problem.html", {"problem": problem}, status=problem.status_code)
            if isinstance(problem, exceptions.Throttled):
                response["Retry-After"] = str(int(problem.wait))
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return wrapper
