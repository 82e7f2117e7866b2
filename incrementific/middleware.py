import logging
import re
import time

import corsheaders.middleware
from corsheaders.conf import conf as cors_conf
from django.conf import settings

from incrementific import surfaces
from incrementific.exceptions import error_response

logger = logging.getLogger("django.request")

# What an oversized body may cost before its 413: read and thrown away, so that the answer
# arrives. A server that closes a connection with unread data in its receive buffer makes the
# kernel send a reset, which can destroy the answer before the client reads it (a client that
# sends its whole body before it reads, without `Expect: 100-continue`, as most do). Past these
# bounds, the connection is closed with the rest unread.
DISCARD_BYTES = 16 * 1024 * 1024
DISCARD_SECONDS = 5.0
_CHUNK = 64 * 1024


class RequestBodyLimitMiddleware:
    """Refuse an oversized body by its Content-Length, before anything parses it.

    DRF's parsers read the request stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    (checked only by request.body and form parsing) would not stop a huge JSON body.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, 400, "Invalid Content-Length.", "bad_request")
        if length > settings.MAX_REQUEST_BODY_BYTES:
            _discard(request, length)
            return error_response(request, 413, "The request body is too large.", "request_too_large")
        return self.get_response(request)


def _discard(request, length: int) -> None:
    deadline = time.monotonic() + DISCARD_SECONDS
    left = min(length, DISCARD_BYTES)
    try:
        while left > 0 and time.monotonic() < deadline:
            chunk = request.read(min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
    except OSError:
        pass  # the client went away: nobody is left to answer


class JsonErrorsInDebugMiddleware:
    """With DEBUG on, a crash under the API's or the prototype's paths answers JSON as it does
    with DEBUG off (handler500), not Django's HTML debug page; the traceback goes to the log.
    Installed only when DEBUG is on (settings.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if surfaces.surface(request.path_info) == surfaces.WEB:
            return None  # the pages keep Django's debug page
        logger.error("Internal Server Error: %s", request.path, exc_info=exception)
        return error_response(request, 500, "Server error.", "server_error")


class CorsMiddleware(corsheaders.middleware.CorsMiddleware):
    """django-cors-headers' middleware, for the requests that CORS is about.

    A browser sends `Origin` on every cross-origin request, preflights included; a request without
    one (a server calling `next`, curl) is not a CORS request, and would gain nothing from the
    library's work but its cost: reading every header into `request.headers` and patching `Vary`,
    about 10% of a `next` (BENCHMARKS.md). With a list of origins the answer depends on the
    origin, so such a request still gets `Vary: Origin`, for caches; with `*` it does not (the
    answer is the same for every origin)."""

    async_capable = False

    def __init__(self, get_response):
        super().__init__(get_response)
        self.varies = not cors_conf.CORS_ALLOW_ALL_ORIGINS
        self.cors_path = re.compile(cors_conf.CORS_URLS_REGEX).match

    def __call__(self, request):
        if "HTTP_ORIGIN" in request.META:
            return super().__call__(request)
        response = self.get_response(request)
        if self.varies and self.cors_path(request.path_info):
            # patch_vary_headers()'s result, for a Vary that cannot hold Origin yet (nothing but
            # this adds it), at a third of its cost.
            vary = response.get("Vary")
            response["Vary"] = f"{vary}, origin" if vary else "origin"
        return response
