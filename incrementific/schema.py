"""What the OpenAPI schema (drf-spectacular) cannot guess: the API-key scheme, the strict
integers, and the error bodies every endpoint may answer with. Imported by the URLconf, so
that the extensions are registered before a schema is built."""

from django.core.validators import RegexValidator
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


class TrimmedStringScheme(OpenApiSerializerFieldExtension):
    """DRF's CharField trims white space from what it reads, and refuses what is then empty
    unless it allows blank: such a field in a request takes a string with something besides
    white space (and no NUL, as every string: NO_NUL), which its schema says as a pattern."""

    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        plain = schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema
        plain = plain and not any(isinstance(v, RegexValidator) for v in field.validators)  # its own pattern
        if direction == "request" and plain and field.trim_whitespace and not field.allow_blank:
            schema["pattern"] = NOT_BLANK
        return schema


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
    409: "A counter by that name exists, the value would pass 2^63-1, the first request with this "
    "Idempotency-Key is still being answered, or a gapless counter refuses it (`below_issued`, "
    "`gap_too_large`, `step_too_large`, `already_voided`, `log_kept`, `not_gapless`); nothing changed.",
    413: "The request body is too large.",
    422: "This Idempotency-Key was sent before with another request (nothing changed).",
    415: "Unsupported media type.",
    429: "Too many attempts; try again after Retry-After seconds.",
    503: "Counter storage or the database is unavailable; try again.",
}


# What incrementific/idempotency.py accepts, exactly: a bare key (printable ASCII, neither
# beginning with a quote nor with or ending in a space, which HTTP would strip; any trailing
# space or tab is stripped), or an RFC 8941 string whose unescaped content is 1 to 255
# characters. tests/test_openapi.py holds the server to it, both ways.
IDEMPOTENCY_KEY_PATTERN = (
    r"^(?:[\x21\x23-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?"
    r'|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\]){1,255}")[\x20\x09]*$'
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 512, "pattern": IDEMPOTENCY_KEY_PATTERN},
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


# DRF's CharField refuses a NUL character in every string it reads (ProhibitNullCharactersValidator),
# which drf-spectacular does not say; a string with no pattern of its own says it here.
NO_NUL = r"^[^\x00]*$"
# ... and something besides white space (Python's, which str.strip() removes: DRF's trim).
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


def strings_without_nul(result, generator, request, public):
    """A postprocessing hook: every string property of a request body carries NO_NUL, unless it
    has a pattern or a list of values of its own (which allow no NUL already)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            for prop in component.get("properties", {}).values():
                for schema in [prop, prop.get("items", {})]:
                    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
                        schema["pattern"] = NO_NUL
    return result


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def forms_without_null(result, generator, request, public):
    """A postprocessing hook: a form cannot send null (it would send the text "null"), so a
    request body's form encodings refer to a copy of its component where a nullable field is
    what it is otherwise, or empty: a form leaves such a field out, or empty, for null (DRF reads
    a form's '' as null for a field that allows null, and counters/serializers.py's FormatField
    too). A list is left out for null."""
    schemas = result.get("components", {}).get("schemas", {})
    for path in result.get("paths", {}).values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            for media_type in FORM_TYPES:
                ref = content.get(media_type, {}).get("schema", {}).get("$ref", "")
                name = ref.rsplit("/", 1)[-1]
                component = schemas.get(name)
                if component is None or not any(_nullable(p) for p in component.get("properties", {}).values()):
                    continue
                form = f"{name}Form"
                if form not in schemas:
                    copy = {**component, "properties": {}}
                    for field, prop in component["properties"].items():
                        copy["properties"][field] = _in_a_form(prop) if _nullable(prop) else prop
                    schemas[form] = copy
                content[media_type] = {**content[media_type], "schema": {"$ref": f"#/components/schemas/{form}"}}
    return result


_NULL = {"$ref": "#/components/schemas/NullEnum"}


def _nullable(prop: dict) -> bool:
    return bool(prop.get("nullable")) or _NULL in prop.get("oneOf", [])


def _not_null(prop: dict) -> dict:
    """A property's schema without null: not `nullable`, and not one of a `oneOf` (an enum's)."""
    prop = {k: v for k, v in prop.items() if k != "nullable"}
    if "oneOf" in prop:
        rest = [choice for choice in prop.pop("oneOf") if choice != _NULL]
        prop.update({"oneOf": rest} if len(rest) > 1 else {"allOf": rest})
    return prop


_EMPTY = {"type": "string", "enum": [""]}


def _in_a_form(prop: dict) -> dict:
    """A nullable property as a form sends it: its value, or empty for null (a list: left out)."""
    prop = _not_null(prop)
    if prop.get("type") == "array":
        return prop
    outer = {k: prop.pop(k) for k in ("description", "default", "example") if k in prop}
    return {**outer, "anyOf": [prop, _EMPTY]}


REQUEST_LINE_MAX = 8190  # gunicorn.conf.py's limit_request_line


def request_line_limit(result, generator, request, public):
    """A postprocessing hook: every operation may be answered 414 by the HTTP server, before the
    app sees the request, when its request line is longer than gunicorn allows (an HTML page,
    not the API's JSON: gunicorn writes it)."""
    too_long = {
        "description": f"The request line (method, path and query) is longer than {REQUEST_LINE_MAX} bytes: "
        "the HTTP server's own answer, an HTML page.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    result.setdefault("components", {}).setdefault("responses", {})["RequestLineTooLong"] = too_long
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("414", {"$ref": "#/components/responses/RequestLineTooLong"})
    return result


def shortest_password(result, generator, request, public):
    """A postprocessing hook: a password being chosen (registration, a new password) is at least
    as long as AUTH_PASSWORD_VALIDATORS' MinimumLengthValidator asks; the serializers check it
    with Django's own message, which no field's min_length would give."""
    from django.contrib.auth import password_validation

    shortest = max(
        (v.min_length for v in password_validation.get_default_password_validators() if hasattr(v, "min_length")),
        default=1,
    )
    schemas = result.get("components", {}).get("schemas", {})
    for component, field in [("RegisterRequest", "password"), ("PasswordChangeRequest", "new_password")]:
        prop = schemas.get(component, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["minLength"] = max(prop.get("minLength", 0), shortest)
    return result
