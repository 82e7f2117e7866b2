"""What the OpenAPI schema (drf-spectacular) cannot guess: the API-key scheme, the strict
integers, and the error bodies every endpoint may answer with. Imported by the URLconf, so
that the extensions are registered before a schema is built."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `POST /api/keys` (`inc_...`), as `Authorization: Bearer inc_...`.",
        }


class JWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.JWTAuthentication"


class CallerSessionScheme(SessionScheme):
    target_class = "accounts.authentication.SessionAuthentication"


class ProviderTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.oidc.ProviderTokenAuthentication"
    name = "providerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from the OpenID Connect provider (OIDC_ISSUER) whose `aud` holds "
            "OIDC_API_AUDIENCE, when that is set (docs/single-sign-on.md).",
        }


class StrictIntegerScheme(OpenApiSerializerFieldExtension):
    target_class = "counters.serializers.StrictIntegerField"

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        return {"type": "integer", "format": "int64", "minimum": field.min_value, "maximum": field.max_value}


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class ValidationErrorSerializer(ErrorSerializer):
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="The messages for each field that was wrong (absent when the body did not parse).",
    )


ERROR_DESCRIPTIONS = {
    400: "Invalid input (nothing changed).",
    401: "No credentials, or bad ones.",
    403: "Not allowed: an API key outside its scope (`api_key_scope`), an API key managing keys, "
    "or the cap on counters reached.",
    404: "Not found: no such counter or key (or not yours), or an unknown `?format=`.",
    409: "A counter by that name exists, the value would pass 2^63-1, or the first request with this "
    "Idempotency-Key is still being answered (nothing changed).",
    413: "The request body is too large.",
    422: "This Idempotency-Key was sent before with another request (nothing changed).",
    415: "Unsupported media type.",
    429: "Too many attempts; try again after Retry-After seconds.",
    503: "Counter storage or the database is unavailable; try again.",
}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "1 to 255 printable ASCII characters, bare or as a quoted string. The first request with a key "
        "runs; a retry of the same request with the same key gets the same status and body again, with "
        "`Idempotent-Replayed: true`, and changes nothing (a replayed `next` takes no value). Another "
        "request with the key is a 422; a retry while the first still runs, a 409. Answers that changed "
        "nothing (400, 401, 403, 404, 413, 415, 429, 503) are not kept. Kept for IDEMPOTENCY_KEY_SECONDS "
        "(86400 by default, a day), per user, then forgotten."
    ),
)


def responses(ok: dict, *errors: int) -> dict:
    """A response table: the success entries, plus the project's error body for each status."""
    table = dict(ok)
    for code in errors:
        body = ValidationErrorSerializer if code == 400 else ErrorSerializer
        table[code] = OpenApiResponse(body, description=ERROR_DESCRIPTIONS[code])
    return table


PROTOTYPE_PATHS = {"/register", "/next", "/current", "/set"}


def canonical_paths(endpoints):
    """One documented path per endpoint: without the optional trailing slash (both answer),
    and the prototype's under /v1 (the bare paths answer too)."""
    documented = []
    for path, path_regex, method, callback in endpoints:
        path = path.rstrip("/") or "/"
        if path in PROTOTYPE_PATHS:
            path = "/v1" + path
        documented.append((path, path_regex, method, callback))
    return documented
