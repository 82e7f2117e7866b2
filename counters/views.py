from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from counters import history, services
from counters.history import Actor
from counters.selectors import counter_history, counter_list
from counters.serializers import (
    CounterChangeSerializer,
    CounterCreateSerializer,
    CounterNextSerializer,
    CounterSerializer,
    CounterSetSerializer,
    counter_data,
    counters_url,
)
from incrementific import idempotency
from incrementific.browsable import Described
from incrementific.names import NAME_PATTERN
from incrementific.rendering import PlainTextRenderer, RenderNow
from incrementific.schema import IDEMPOTENCY_KEY, responses

NAME = OpenApiParameter(
    "name", str, OpenApiParameter.PATH, pattern=rf"^{NAME_PATTERN}$", description="The counter's name."
)


# What delete means, said wherever a counter is deleted or created (docs/api.md says it too).
NAME_AGAIN_STARTS_AGAIN = (
    "Deleting a counter deletes its numbers with it: a counter created again under the same name "
    "starts again from its starting value (1, 2, 3 ... then 1, 2 again). To keep a sequence that "
    "must never repeat, set the counter instead of deleting it."
)

# A read and `next` answer the counter in JSON, or its value alone for `Accept: text/plain`.
PLAIN_TEXT = (
    "With `Accept: text/plain` the answer is the value and a newline, nothing else (an error keeps its "
    "JSON body): `N=$(curl -s -X POST -H 'Accept: text/plain' ...)` in a build script."
)
COUNTER_OR_VALUE = {
    (200, "application/json"): CounterSerializer,
    (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The value, and a newline."),
}


def json_errors(table: dict) -> dict:
    """A response table whose errors are documented as what they are, JSON, whatever was asked."""
    return {(key, "application/json") if isinstance(key, int) else key: value for key, value in table.items()}


# PUT and PATCH do the same thing (a counter has one writable field).
SET_SCHEMA = extend_schema(
    summary="Set a counter",
    parameters=[NAME, IDEMPOTENCY_KEY],
    request=CounterSetSerializer,
    responses=responses({200: CounterSerializer}, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
)


@extend_schema_view(
    list=extend_schema(
        summary="List your counters",
        responses=responses({200: CounterSerializer(many=True)}, 400, 401, 403, 404, 429, 503),
    ),
    create=extend_schema(
        summary="Create a counter",
        description=f"Create a counter at `value` (default 0).\n\n{NAME_AGAIN_STARTS_AGAIN}",
        parameters=[IDEMPOTENCY_KEY],
        request=CounterCreateSerializer,
        responses=responses({201: CounterSerializer}, 400, 401, 403, 409, 413, 415, 422, 503),
    ),
    retrieve=extend_schema(
        summary="Read a counter",
        description=PLAIN_TEXT,
        parameters=[NAME],
        responses=json_errors(responses(COUNTER_OR_VALUE, 401, 403, 404, 429, 503)),
    ),
    update=SET_SCHEMA,
    partial_update=SET_SCHEMA,
    destroy=extend_schema(
        summary="Delete a counter",
        description=f"Delete the counter and its value.\n\n{NAME_AGAIN_STARTS_AGAIN}",
        parameters=[NAME, IDEMPOTENCY_KEY],
        responses=responses({204: None}, 400, 401, 403, 404, 409, 422, 503),
    ),
    history=extend_schema(
        summary="A counter's history",
        description="Every change to the counter other than `next` (create, set, reset), newest first, "
        "50 a page: who made it (and with which API key), where, the old and the new value, when, and "
        "the request's `X-Request-ID`.",
        parameters=[NAME],
        responses=responses({200: CounterChangeSerializer(many=True)}, 400, 401, 403, 404, 429, 503),
    ),
    next=extend_schema(
        summary="Take the next value",
        description=PLAIN_TEXT,
        parameters=[NAME, IDEMPOTENCY_KEY],
        request=CounterNextSerializer,
        responses=json_errors(responses(COUNTER_OR_VALUE, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503)),
    ),
)
class CounterViewSet(Described, RenderNow, viewsets.GenericViewSet):
    """Your counters (each page of the browsable API has its own description, in `pages`)."""

    pages = {
        "List": (
            "Counters",
            """Your counters, by name, 50 a page. Values are whole numbers from 0 to 2^63-1.

            POST a `name` (and an optional starting `value`, default 0) to create one.""",
            NAME_AGAIN_STARTS_AGAIN,
        ),
        "Instance": (
            "Counter",
            """One of your counters. PUT or PATCH a `value` to set it; POST to its `next` to take the
            next value (optional `step`); DELETE deletes it.""",
            NAME_AGAIN_STARTS_AGAIN,
        ),
        "History": (
            "History",
            """Every change to the counter other than `next` (create, set, reset), newest first, with
            who made it and where.""",
        ),
        "Next value": (
            "Next value",
            """POST to take the counter's next value: it adds `step` (default 1) and answers the
            counter with its new value. A value handed out here is never handed out again, until
            the counter is set below it or deleted.""",
        ),
    }

    lookup_field = "name"
    lookup_value_regex = NAME_PATTERN
    # Every handler checks its caller itself (accounts/caller.py): a counter's service checks it
    # in the counter's own Redis call, or request.auth.owner() does, before anything else.
    checks_caller = True
    serializers = {
        "create": CounterCreateSerializer,
        "update": CounterSetSerializer,
        "partial_update": CounterSetSerializer,
        "next": CounterNextSerializer,
    }

    # `Accept: text/plain` is answered where a counter's value is the answer (a read and next).
    PLAIN_TEXT_ACTIONS = frozenset(["retrieve", "next"])

    def get_renderers(self):
        renderers = super().get_renderers()
        if self.action in self.PLAIN_TEXT_ACTIONS:
            renderers.append(PlainTextRenderer())
        return renderers

    def get_queryset(self):
        caller = self.request.auth
        rows = counter_list(owner_id=caller.owner())
        scope = caller.checked_scope()
        # A key limited to some counters sees only those, in the list and the browsable API.
        return rows if scope.counters is None else rows.filter(name__in=scope.counters)

    def get_serializer_class(self):
        return self.serializers.get(self.action, CounterCreateSerializer)

    def get_object(self):
        # Only the browsable API calls this, to fill in its forms; the handlers below read
        # counters straight from the store so that the hot path runs no SQL.
        row = get_object_or_404(self.get_queryset(), name=self.kwargs["name"])
        row.value = self._state().value
        return row

    def _state(self):
        caller = self.request.auth
        return services.counter_get(owner_id=caller.owner_for_script(), caller=caller, name=self.kwargs["name"])

    def _data(self, state) -> dict:
        return counter_data(
            counters_url(self.request), name=self.kwargs.get("name"), value=state.value, created=state.created
        )

    def _respond(self, state):
        return self.respond(self._data(state))

    def _valid(self, serializer_class):
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def list(self, request):
        caller = request.auth
        owner = caller.owner("read")  # an API key, checked; an access token is, in the read below
        page = self.paginate_queryset(self.get_queryset())
        values = services.counter_values(page, counted_for=owner, caller=caller)
        base = counters_url(request)
        return self.get_paginated_response(
            [
                counter_data(base, name=row.name, value=value, created=services.rendered(row.created_at))
                for row, value in zip(page, values, strict=True)
            ]
        )

    @idempotency.idempotent_change
    def create(self, request):
        data = self._valid(CounterCreateSerializer)
        owner = request.auth.owner("create", data["name"], revocation=True)
        state = services.counter_create(
            owner_id=owner, name=data["name"], value=data["value"], actor=Actor.of(request, "api")
        )
        self.kwargs["name"] = data["name"]
        body = self._data(state)
        response = self.respond(body, status.HTTP_201_CREATED)
        response["Location"] = body["url"]
        return response

    def retrieve(self, request, name):
        return self._respond(self._state())

    def update(self, request, name):
        data = CounterSetSerializer.validated(request.data)
        idempotent = idempotency.of(request, value=data["value"])
        caller = request.auth
        state = services.counter_set(
            owner_id=caller.owner_for_script(),
            caller=caller,
            name=name,
            value=data["value"],
            idempotent=idempotent,
            actor=Actor.of(request, "api"),
        )
        return idempotency.mark(self._respond(state), state)

    partial_update = update

    @idempotency.idempotent_change
    def destroy(self, request, name):
        owner = request.auth.owner("delete", name, revocation=True)
        services.counter_delete(owner_id=owner, name=name, actor=Actor.of(request, "api"))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["get"], name="History")
    def history(self, request, name):
        """Every change to the counter other than `next`, newest first."""
        owner = request.auth.owner("read", name, revocation=True)
        if not counter_list(owner_id=owner).filter(name=name).exists():
            raise NotFound()
        history.move(owner)  # the sets still in Redis first
        page = self.paginate_queryset(counter_history(owner_id=owner, name=name))
        return self.get_paginated_response(CounterChangeSerializer(page, many=True).data)

    @action(detail=True, methods=["post"], name="Next value")
    def next(self, request, name):
        """Take the next value: add `step` (default 1) and return the counter."""
        # No body is the usual call, and it skips the parsers and the serializer (BENCHMARKS.md).
        # DRF's own test for a body (request.stream is None without one), so a body DRF would
        # read is never ignored here: `{}` is the default step, and `[]` or `null` a 400.
        step = 1 if request.stream is None else CounterNextSerializer.validated(request.data)["step"]
        idempotent = idempotency.of(request, step=step)
        caller = request.auth
        state = services.counter_next(
            owner_id=caller.owner_for_script(), caller=caller, name=name, step=step, idempotent=idempotent
        )
        return idempotency.mark(self._respond(state), state)
