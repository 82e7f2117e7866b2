import io

from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a deeply nested body a 400 like any other malformed one.

    DRF turns the json module's ValueError into a ParseError, but not its RecursionError, so
    "[" * 10000 would otherwise be a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, with a body that holds something but no part a 400: Django skips a
    malformed part (`--boundary\\r\\nNone--boundary--`, how schemathesis writes a null form) and
    would read such a body as an empty form, that is as a request with every field left out. An
    empty form (the closing boundary alone) is still one."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""  # at most MAX_REQUEST_BODY_BYTES
        parsed = super().parse(io.BytesIO(body), media_type, parser_context)
        if not parsed.data and not parsed.files:
            boundary = parse_header_parameters(media_type or "")[1].get("boundary", "")
            if body.strip() != f"--{boundary}--".encode():
                raise ParseError("Multipart form parse error - no part in the body")
        return parsed
