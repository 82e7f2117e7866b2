"""Answers rendered when the view returns them, for the views on the hot path.

DRF's Response defers rendering: the view returns data, and Django's template-response machinery
renders it after the view, with the renderer that content negotiation chose in ``initial()``,
before the view ran. For JSON, which every API client gets, :class:`RenderNow` renders at once
into a plain HttpResponse, with the same renderer, media type and context: the same bytes and
headers (tests/test_rendering.py compares the two), for 6% fewer instructions per `next`
(BENCHMARKS.md). Any other renderer, the browsable API's HTML above all (it needs the response
in its context), gets a Response as usual.
"""

from django.http import HttpResponse
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response


class RenderNow:
    """For APIViews: ``self.respond(data, status)`` where a view would return ``Response(...)``."""

    def respond(self, data, status: int = 200) -> HttpResponse | Response:
        request = self.request
        renderer = request.accepted_renderer
        if isinstance(renderer, JSONRenderer):
            content = renderer.render(data, request.accepted_media_type, self.get_renderer_context())
            return HttpResponse(content, content_type=renderer.media_type, status=status)
        return Response(data, status=status)


class PlainTextRenderer(BaseRenderer):
    """`Accept: text/plain` on a counter's `next` and read: its `formatted` value (the value as
    its format prints it, or the value alone) and a newline, nothing else, for a script
    (`N=$(curl -s -H 'Accept: text/plain' ...)`). Errors keep their JSON bodies
    (incrementific/exceptions.py switches their renderer back)."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return f"{data['formatted']}\n".encode()
