from django.http import Http404
from rest_framework.negotiation import DefaultContentNegotiation

PLAIN_ACCEPTS = frozenset(["", "*/*", "application/json"])


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with a shortcut for what API clients send (nothing, `*/*` or JSON):
    the view's first renderer if it is JSON. Anything else (a browser, JSON:API, `?format=`)
    goes through DRF's full negotiation. Worth 3% of a `next` request (BENCHMARKS.md). A
    `?format=` is one of the renderers' formats, given once, or a 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        first = renderers[0]
        if (
            first.media_type == "application/json"
            and request.META.get("HTTP_ACCEPT", "") in PLAIN_ACCEPTS
            and not format_suffix
            and not self._format_override(request)
        ):
            return first, first.media_type
        if not format_suffix and self._format_override(request):
            # DRF would read `?format=` (empty) as no format, and a repeated one as its last; the
            # schema declares one of the formats, so either is what an unknown format is: a 404.
            given = request.query_params.getlist(self.settings.URL_FORMAT_OVERRIDE)
            if len(given) != 1 or not given[0]:
                raise Http404
        return super().select_renderer(request, renderers, format_suffix)

    def _format_override(self, request) -> bool:
        # Without a query string there is no `?format=`, and no need to build request.GET, an
        # empty QueryDict that costs 2.6% of a `next` (BENCHMARKS.md).
        return bool(request.META.get("QUERY_STRING")) and self.settings.URL_FORMAT_OVERRIDE in request.query_params
