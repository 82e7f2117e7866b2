"""The prototype's surface, for the clients that still call it.

`/v1/register` (and `/register`), `GET /v1/next`, `GET /v1/current`, `PUT /v1/current` and
`PUT /v1/set`, on the user's `default` counter, answering `{"message", "result"}` (or
`{"message", "apiKey"}`), with errors as `{"message"}`. With `Accept: application/vnd.api+json`
the same endpoints answer JSON:API documents, as the original challenge asked.

Unlike the prototype, `/register` checks the password of an existing user before it hands out
another key, and a value of `5abc` is a 400, not 5. Everything goes through the same services
as /api.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import ratelimit
from accounts.serializers import RegisterSerializer
from accounts.services import UsernameTaken, api_key_create, user_register
from accounts.throttling import LoginThrottle
from counters import services
from counters.history import Actor
from counters.models import DEFAULT_COUNTER
from counters.serializers import StrictIntegerField
from incrementific import idempotency
from incrementific.exceptions import JSON_API, exception_handler, prototype_error_body
from incrementific.parsers import JSONParser, MultiPartParser
from incrementific.rendering import RenderNow
from incrementific.schema import ERROR_DESCRIPTIONS, IDEMPOTENCY_KEY


class V1MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class V1ResultSerializer(V1MessageSerializer):
    result = StrictIntegerField(min_value=0)


class V1KeySerializer(V1MessageSerializer):
    apiKey = serializers.CharField()  # noqa: N815 (the prototype's name)


class V1RegisterRequestSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, help_text="Or `email`.")
    email = serializers.CharField(required=False)
    password = serializers.CharField()


class V1CredentialsSerializer(serializers.Serializer):
    """The shape of credentials, checked before any query (PostgreSQL refuses a NUL in one)."""

    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class V1SetSerializer(serializers.Serializer):
    current = StrictIntegerField(min_value=0)


class _ValueSerializer(serializers.Serializer):
    value = StrictIntegerField(min_value=0)


class _CounterResourceSerializer(serializers.Serializer):
    type = serializers.ChoiceField(["counters"])
    id = serializers.CharField()
    attributes = _ValueSerializer()


class JsonApiCounterSerializer(serializers.Serializer):
    data = _CounterResourceSerializer()


class _KeyAttributesSerializer(V1KeySerializer):
    pass


class _KeyResourceSerializer(serializers.Serializer):
    type = serializers.ChoiceField(["api-keys"])
    id = serializers.CharField()
    attributes = _KeyAttributesSerializer()


class JsonApiKeySerializer(serializers.Serializer):
    data = _KeyResourceSerializer()


class _JsonApiErrorSerializer(serializers.Serializer):
    status = serializers.CharField()
    code = serializers.CharField()
    detail = serializers.CharField()


class JsonApiErrorsSerializer(serializers.Serializer):
    errors = _JsonApiErrorSerializer(many=True)


def _responses(ok_status: int, ok_json, ok_json_api, *errors: int) -> dict:
    table = {(ok_status, "application/json"): ok_json, (ok_status, JSON_API): ok_json_api}
    for code in errors:
        description = ERROR_DESCRIPTIONS[code]
        table[(code, "application/json")] = OpenApiResponse(V1MessageSerializer, description=description)
        table[(code, JSON_API)] = OpenApiResponse(JsonApiErrorsSerializer, description=description)
    return table


CURRENT_RESPONSES = _responses(200, V1ResultSerializer, JsonApiCounterSerializer, 401, 403, 404, 429, 503)
NEXT_RESPONSES = _responses(200, V1ResultSerializer, JsonApiCounterSerializer, 400, 401, 403, 404, 409, 422, 429, 503)
SET_REQUEST = {
    "application/json": V1SetSerializer,
    "application/x-www-form-urlencoded": V1SetSerializer,
    "multipart/form-data": V1SetSerializer,
    JSON_API: JsonApiCounterSerializer,
}
SET_RESPONSES = _responses(
    200, V1ResultSerializer, JsonApiCounterSerializer, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503
)


class JSONAPIRenderer(JSONRenderer):
    media_type = JSON_API
    format = "jsonapi"


class JSONAPIParser(JSONParser):
    media_type = JSON_API


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"


def _wants_json_api(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == JSONAPIRenderer.format


def v1_exception_handler(exc, context):
    """The project's errors, reshaped: `{"message"}`, or JSON:API `{"errors": [...]}`."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    body = response.data
    detail = "; ".join(_field_errors(body.get("fields", {}))) or body["detail"]
    json_api = _wants_json_api(context["request"])
    response.data = prototype_error_body(response.status_code, detail, body["code"], json_api=json_api)
    return response


def _field_errors(fields: dict, prefix: str = "") -> list[str]:
    """`field: message`, one a field, nested fields by their path (`data.type: ...`)."""
    out = []
    for field, errors in fields.items():
        if isinstance(errors, dict):
            out += _field_errors(errors, f"{prefix}{field}.")
        else:
            out.append(f"{prefix}{field}: {' '.join(map(str, errors))}")
    return out


class V1View(RenderNow, APIView):
    renderer_classes = [JSONRenderer, JSONAPIRenderer]
    parser_classes = [JSONParser, JSONAPIParser, FormParser, MultiPartParser]

    def get_exception_handler(self):
        return v1_exception_handler

    def counter(self, message: str, state):
        if _wants_json_api(self.request):
            data = {"data": {"type": "counters", "id": DEFAULT_COUNTER, "attributes": {"value": state.value}}}
        else:
            data = {"message": message, "result": state.value}
        return idempotency.mark(self.respond(data), state)


@extend_schema(
    summary="Register (prototype)",
    request={
        "application/json": V1RegisterRequestSerializer,
        "application/x-www-form-urlencoded": V1RegisterRequestSerializer,
        "multipart/form-data": V1RegisterRequestSerializer,
    },
    responses=_responses(200, V1KeySerializer, JsonApiKeySerializer, 400, 401, 404, 413, 415, 429, 503),
)
class V1RegisterView(V1View):
    """Register (or, with the right password, get another key): answers an API key."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]
    throttle_classes = [LoginThrottle]
    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request) -> str:
        # Without it DRF turns a wrong password's 401 into a 403 (as simplejwt's views know).
        return 'Bearer realm="api"'

    def post(self, request):
        data = request.data
        if not data:
            raise BadRequest("Missing request body", "missing_body")
        username = data.get("username") or data.get("email") if isinstance(data, dict) else None
        password = data.get("password") if isinstance(data, dict) else None
        if not (isinstance(username, str) and isinstance(password, str) and username and password):
            raise BadRequest("Username and password are required", "missing_credentials")
        V1CredentialsSerializer(data={"username": username, "password": password}).is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username__iexact=username).first()
        failures = username.lower()
        ratelimit.check("login_failures", failures)
        if user is None:
            ratelimit.take("register", LoginThrottle().get_ident(request))
            serializer = RegisterSerializer(data={"username": username, "password": password})
            serializer.is_valid(raise_exception=True)
            try:
                user = user_register(**serializer.validated_data)
            except UsernameTaken:  # registered a moment ago by another request
                raise exceptions.AuthenticationFailed("Invalid username or password.") from None
        elif not (user.is_active and user.check_password(password)):
            ratelimit.count("login_failures", failures)
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        row, secret = api_key_create(user_id=user.id, name="v1 register")
        message = f"Successfully registered {user.username}"
        if _wants_json_api(request):
            document = {"type": "api-keys", "id": row.prefix, "attributes": {"message": message, "apiKey": secret}}
            return Response({"data": document})
        return Response({"message": message, "apiKey": secret}, status=status.HTTP_200_OK)


def _set_value(request) -> int:
    data = request.data
    if _is_json_api_document(data):
        # A JSON:API resource object names its type and id (the schema says so, and a 400 says
        # what is missing); its value is then checked as the plain body's is.
        document = JsonApiCounterSerializer(data={"data": {**data["data"], "attributes": {"value": 0}}})
        document.is_valid(raise_exception=True)
        data = {"current": data["data"]["attributes"].get("value")}
    serializer = V1SetSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["current"]


def _is_json_api_document(data) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("data"), dict)
        and isinstance(data["data"].get("attributes"), dict)
    )


class V1CounterView(V1View):
    """The prototype's counter endpoints: always the caller's `default` counter, which checks
    the caller's token or key in its own Redis call."""

    checks_caller = True  # in the counter's own Redis call (accounts/caller.py)


class V1NextView(V1CounterView):
    """Take the next value of your `default` counter."""

    # GET takes a value (the prototype's choice); HEAD, which Django would route to it, must not
    # make a monitor or a proxy use up numbers nobody sees.
    http_method_names = ["get", "options"]

    @extend_schema(
        summary="Next value of `default` (prototype)", parameters=[IDEMPOTENCY_KEY], responses=NEXT_RESPONSES
    )
    def get(self, request):
        idempotent = idempotency.of(request, step=1)
        caller = request.auth
        state = services.counter_next(
            owner_id=caller.owner_for_script(), caller=caller, name=DEFAULT_COUNTER, idempotent=idempotent
        )
        return self.counter("Incremented", state)


class V1CurrentView(V1CounterView):
    """Read (GET) or set (PUT `current=N`) your `default` counter."""

    @extend_schema(summary="Current value of `default` (prototype)", responses=CURRENT_RESPONSES)
    def get(self, request):
        caller = request.auth
        state = services.counter_get(owner_id=caller.owner_for_script(), caller=caller, name=DEFAULT_COUNTER)
        return self.counter("Current", state)

    @extend_schema(
        summary="Set `default` (prototype)", parameters=[IDEMPOTENCY_KEY], request=SET_REQUEST, responses=SET_RESPONSES
    )
    def put(self, request):
        value = _set_value(request)
        idempotent = idempotency.of(request, value=value)
        caller = request.auth
        state = services.counter_set(
            owner_id=caller.owner_for_script(),
            caller=caller,
            name=DEFAULT_COUNTER,
            value=value,
            idempotent=idempotent,
            actor=Actor.of(request, "v1"),
        )
        return self.counter("Set", state)


class V1SetView(V1CurrentView):
    """Set (PUT `current=N`) your `default` counter."""

    http_method_names = ["put", "options"]
