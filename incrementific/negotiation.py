from rest_framework.negotiation import DefaultContentNegotiation

PLAIN_ACCEPTS = frozenset(["", "*/*", "application/json"])


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with a shortcut for what API clients send (nothing, `*/*` or JSON):
    the view's first renderer if it is JSON. Anything else (a browser, JSON:API, `?format=`)
    goes through DRF's full negotiation. Worth 3% of a `next` request (BENCHMARKS.md)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        first = renderers[0]
        if (
            first.media_type == "application/json"
            and request.META.get("HTTP_ACCEPT", "") in PLAIN_ACCEPTS
            and not format_suffix
            and not self._format_override(request)
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)

    def _format_override(self, request) -> bool:
        # Without a query string there is no `?format=`, and no need to build request.GET, an
        # empty QueryDict that costs 2.6% of a `next` (BENCHMARKS.md).
        return bool(request.META.get("QUERY_STRING")) and self.settings.URL_FORMAT_OVERRIDE in request.query_params
