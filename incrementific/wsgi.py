"""The WSGI application: Django's, in two arrangements of middleware.

A request that carries `Authorization: Bearer ...` to the API (a token or an API key) never uses
a session, a CSRF cookie or a flash message: DRF authenticates it from the header alone and
refuses it if the header is bad, never falling back to a session. Such requests go through a
handler without those four middlewares (a few percent of `next`, BENCHMARKS.md); everything
else, the web app, the admin and the browsable API with their cookies, through the full list.
The security headers and the body limit are in both. Both make their requests with `Request`,
which validates the host once.
"""

import os

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incrementific.settings")
django.setup(set_prefix=False)

from incrementific import metrics  # noqa: E402
from incrementific.logs import new_id as new_request_id  # noqa: E402
from incrementific.logs import request_id  # noqa: E402
from incrementific.surfaces import API_PATH_PREFIXES  # noqa: E402

# What only a browser with cookies needs.
BROWSER_ONLY = {
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
}


class Request(WSGIRequest):
    """Django's request, with its host validated once. CommonMiddleware validates the host of
    every request, and a counter's URL asks for it again: 3% of a `next`'s instructions
    (BENCHMARKS.md). A host that fails raises DisallowedHost, is not kept, and fails again."""

    def get_host(self) -> str:
        host = self.__dict__.get("_validated_host")
        if host is None:
            host = self.__dict__["_validated_host"] = super().get_host()
        return host


class Handler(WSGIHandler):
    request_class = Request

    def resolve_request(self, request):
        # The matched pattern's name is the metrics' `route` label: bounded, unlike the path.
        match = super().resolve_request(request)
        state = metrics.current.get()
        if state is not None:
            state.route = request.resolver_match.view_name or request.resolver_match.route
        return match


def _handler(middleware: list[str]) -> WSGIHandler:
    # WSGIHandler reads settings.MIDDLEWARE once, when it is made; this runs at import, before
    # any request, so no request can see the shorter list.
    full = settings.MIDDLEWARE
    settings.MIDDLEWARE = middleware
    try:
        return Handler()
    finally:
        settings.MIDDLEWARE = full


browser_application = Handler()
bearer_application = _handler([name for name in settings.MIDDLEWARE if name not in BROWSER_ONLY])


def application(environ, start_response):
    # Every answer carries `X-Request-ID`, the caller's own if it sent a sane one, and every log
    # line written while the app answers carries it too (incrementific/logs.py). Done here, around
    # both handlers, not as a middleware: a middleware cost a `next` 2% of its instructions
    # (Django's wrapping of each one, and its header checks), this a fifth of that (BENCHMARKS.md).
    rid = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
    token = request_id.set(rid)
    measured = metrics.request_started(environ.get("PATH_INFO", ""))
    answered = ["500"]

    def respond(status, headers, exc_info=None):
        headers.append(("X-Request-ID", rid))
        answered[0] = status
        return start_response(status, headers, exc_info)

    try:
        if environ.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer " and environ.get("PATH_INFO", "").startswith(
            API_PATH_PREFIXES
        ):
            return bearer_application(environ, respond)
        return browser_application(environ, respond)
    finally:
        metrics.request_finished(measured, environ.get("REQUEST_METHOD", ""), answered[0])
        request_id.reset(token)
