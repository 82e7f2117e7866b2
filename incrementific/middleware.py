from django.conf import settings
from django.http import JsonResponse

from incrementific.exceptions import error_body


class RequestBodyLimitMiddleware:
    """Refuse an oversized body by its Content-Length, before anything reads it.

    DRF's parsers read the request stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    (checked only by request.body and form parsing) would not stop a huge JSON body.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(error_body("Invalid Content-Length.", "bad_request"), status=400)
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return JsonResponse(error_body("The request body is too large.", "request_too_large"), status=413)
        return self.get_response(request)
