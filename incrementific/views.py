"""Project-level views: the health check and the JSON answers Django gives outside DRF."""

import hmac
import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import Resolver404, resolve
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from incrementific import metrics, surfaces
from incrementific import redis as store
from incrementific.exceptions import error_response

logger = logging.getLogger(__name__)


HEALTH_STATES = ["ok", "unavailable"]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(HEALTH_STATES)
    database = serializers.ChoiceField(HEALTH_STATES)
    redis = serializers.ChoiceField(HEALTH_STATES)


HEALTH_RESPONSES = {
    200: HealthSerializer,
    503: OpenApiResponse(HealthSerializer, description="The database or Redis does not answer."),
}


@extend_schema(summary="Health", responses=HEALTH_RESPONSES)
class HealthView(APIView):
    """200 when the database and Redis both answer, else 503; JSON either way."""

    authentication_classes = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    def get(self, request):
        checks = _health()
        healthy = all(v == "ok" for v in checks.values())
        return Response({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


class LiveSerializer(serializers.Serializer):
    status = serializers.ChoiceField(["ok"])


@extend_schema(summary="Liveness", responses={200: LiveSerializer})
class LivezView(APIView):
    """200 while the process serves, touching no dependency: for a supervisor, which restarts
    the process when it fails. A Redis or database outage is not a reason to restart."""

    authentication_classes = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    def get(self, request):
        return Response({"status": "ok"})


@extend_schema(summary="Readiness", responses=HEALTH_RESPONSES)
class ReadyzView(HealthView):
    """200 only when the database and Redis answer, else 503: for a load balancer, which sends
    this instance traffic while it is 200."""


def _health() -> dict[str, str]:
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        logger.error("health check: database: %s", exc)
        checks["database"] = "unavailable"
    try:
        store.ping()
        checks["redis"] = "ok"
    except store.CounterStoreUnavailable:
        checks["redis"] = "unavailable"
    return checks


class FaviconView(RedirectView):
    """/favicon.ico, which browsers ask for on pages that name no icon, to the hashed file.
    Resolved per request: at import time the static manifest may not exist yet (make run
    migrates before it collects static files)."""

    permanent = False

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("web/favicon.svg")


def bad_request(request, exception=None):
    return error_response(request, 400, "Bad request.", "bad_request")


def permission_denied(request, exception=None):
    return error_response(request, 403, "You do not have permission to perform this action.", "permission_denied")


def csrf_failure(request, reason=""):
    # A page left open across a log-out or a log-in elsewhere posts a stale token; a person
    # gets a page that says what to do, not JSON: ours in the web app, Django's elsewhere.
    namespace = _namespace(request)
    if namespace == "web":
        return render(request, "web/csrf_failure.html", status=403)
    if namespace in ("admin", "rest_framework"):  # the admin's and the browsable API's logins
        return django_csrf_failure(request, reason)
    return error_response(request, 403, f"CSRF verification failed: {reason}", "csrf_failed")


def _namespace(request) -> str | None:
    match = request.resolver_match or _resolve(request.path_info)
    return None if match is None else match.namespace


def _resolve(path: str):
    try:
        return resolve(path)
    except Resolver404:
        return None


def not_found(request, exception=None):
    # A person who mistypes an address in a browser gets a page; the API and its clients
    # (curl sends */*) get JSON, on its own paths always.
    if "text/html" in request.headers.get("Accept", "") and surfaces.surface(request.path_info) == surfaces.WEB:
        return render(request, "web/not_found.html", {"what": "page"}, status=404)
    return error_response(request, 404, "Not found.", "not_found")


@csrf_exempt  # a 404 changes nothing, and a POST to a path that does not exist is a 404, not a 403
def api_not_found(request):
    """The last route under the API's and the prototype's paths: Django's handler404 answers
    only with DEBUG off, and these paths answer JSON with DEBUG on too."""
    return not_found(request)


def server_error(request):
    return error_response(request, 500, "Server error.", "server_error")


LOOPBACK = ("127.0.0.1", "::1")


def metrics_view(request):
    """GET /metrics, the Prometheus text format (incrementific/metrics.py): from loopback with no
    proxy in between, or with ``Authorization: Bearer <METRICS_TOKEN>``; anyone else gets the
    404 of a path that does not exist."""
    if request.method not in ("GET", "HEAD") or not _may_scrape(request):
        return error_response(request, 404, "Not found.", "not_found")
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


def _may_scrape(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.META.get("HTTP_AUTHORIZATION", "")
        if sent[:7].lower() == "bearer " and hmac.compare_digest(sent[7:].encode(), token.encode()):
            return True
    # A proxy on the same machine makes every caller loopback: a forwarded request is not.
    return request.META.get("REMOTE_ADDR") in LOOPBACK and "HTTP_X_FORWARDED_FOR" not in request.META
