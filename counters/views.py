from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from counters import gapless, history, series, services
from counters.history import Actor
from counters.selectors import counter_history, counter_list, counter_periods
from counters.serializers import (
    DATE_HELP,
    CounterChangeSerializer,
    CounterCreateSerializer,
    CounterNextSerializer,
    CounterPatchSerializer,
    CounterPeriodSerializer,
    CounterSerializer,
    CounterSetSerializer,
    CounterSettingsSerializer,
    IssuedValueSerializer,
    VoidSerializer,
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
DATE = OpenApiParameter(
    "date",
    OpenApiTypes.DATE,
    OpenApiParameter.QUERY,
    description=DATE_HELP + " A period nobody took a number in reads 0.",
)
STATUS = OpenApiParameter(
    "status", str, OpenApiParameter.QUERY, enum=["issued", "voided"], description="Only the numbers of this status."
)
LOG_DATE = OpenApiParameter(
    "date", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="Only the numbers of this date's period (a series')."
)
VALUE = OpenApiParameter("value", int, OpenApiParameter.PATH, pattern="^[0-9]{1,19}$", description="The number.")
NUMBER_DATE = OpenApiParameter(
    "date",
    OpenApiTypes.DATE,
    OpenApiParameter.QUERY,
    description="A series': a date in the number's period (default: today in the counter's time zone).",
)
GAPLESS_ONLY = "Only a gapless counter keeps a log (any other: a 409 `not_gapless`). Works with Redis down."

# The settings a PUT or PATCH may name: `format` is changed alone with PATCH; `reset` and
# `timezone` are fixed once created (changing them could hand out a number twice).
SETTINGS = frozenset(["format", "reset", "timezone"])


# What delete means, said wherever a counter is deleted or created (docs/api.md says it too).
NAME_AGAIN_STARTS_AGAIN = (
    "Deleting a counter deletes its numbers with it: a counter created again under the same name "
    "starts again from its starting value (1, 2, 3 ... then 1, 2 again). To keep a sequence that "
    "must never repeat, set the counter instead of deleting it."
)

# A read and `next` answer the counter in JSON, or its value alone for `Accept: text/plain`.
PLAIN_TEXT = (
    "With `Accept: text/plain` the answer is `formatted` (the value as the counter's format prints it, "
    "or the value alone) and a newline, nothing else (an error keeps its JSON body): "
    "`N=$(curl -s -X POST -H 'Accept: text/plain' ...)` in a build script."
)
COUNTER_OR_VALUE = {
    (200, "application/json"): CounterSerializer,
    (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The value, and a newline."),
}


def json_errors(table: dict) -> dict:
    """A response table whose errors are documented as what they are, JSON, whatever was asked."""
    return {(key, "application/json") if isinstance(key, int) else key: value for key, value in table.items()}


SET_RESPONSES = responses({200: CounterSerializer}, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
SET_DESCRIPTION = (
    "Set the counter to `value` (a series: the period of `date`, default today). A `format` changes how the "
    "value prints. `reset` and `timezone` are fixed once created: a body may repeat them as they are (what "
    "you read), and one that changes them is a 400 `setting_fixed`."
)
PUT_SCHEMA = extend_schema(
    summary="Set a counter",
    description=SET_DESCRIPTION,
    parameters=[NAME, IDEMPOTENCY_KEY],
    request=CounterSetSerializer,
    responses=SET_RESPONSES,
)
PATCH_SCHEMA = extend_schema(
    summary="Set a counter, or change its format",
    description=SET_DESCRIPTION + " A PATCH without a `value` sets nothing (a `format` alone changes the format).",
    parameters=[NAME, IDEMPOTENCY_KEY],
    request=CounterPatchSerializer,
    responses=SET_RESPONSES,
)


@extend_schema_view(
    list=extend_schema(
        summary="List your counters",
        responses=responses({200: CounterSerializer(many=True)}, 400, 401, 403, 404, 429, 503),
    ),
    create=extend_schema(
        summary="Create a counter",
        description=(
            "Create a counter at `value` (default 0). A series (`reset`: yearly, monthly or daily) keeps a "
            "sequence per period, in its `timezone`; `value` is then its current period's. `format` prints "
            f"the value as a document does (`INV-{{year}}-{{value:05}}`).\n\n{NAME_AGAIN_STARTS_AGAIN}"
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=CounterCreateSerializer,
        responses=responses({201: CounterSerializer}, 400, 401, 403, 409, 413, 415, 422, 503),
    ),
    retrieve=extend_schema(
        summary="Read a counter",
        description=PLAIN_TEXT,
        parameters=[NAME, DATE],
        responses=json_errors(responses(COUNTER_OR_VALUE, 400, 401, 403, 404, 429, 503)),
    ),
    update=PUT_SCHEMA,
    partial_update=PATCH_SCHEMA,
    destroy=extend_schema(
        summary="Delete a counter",
        description=f"Delete the counter and its value.\n\n{NAME_AGAIN_STARTS_AGAIN}",
        parameters=[NAME, IDEMPOTENCY_KEY],
        responses=responses({204: None}, 400, 401, 403, 404, 409, 422, 503),
    ),
    history=extend_schema(
        summary="A counter's history",
        description="Every change to the counter other than `next` (create, set, reset, delete, format), "
        "newest first, 50 a page: who made it (and with which API key), where, the period (a series'), the "
        "old and the new value (or format), when, and the request's `X-Request-ID`.",
        parameters=[NAME],
        responses=responses({200: CounterChangeSerializer(many=True)}, 400, 401, 403, 404, 429, 503),
    ),
    periods=extend_schema(
        summary="A series' periods",
        description="Each period of the series that has a value, newest first, 50 a page (none for a counter "
        "without a `reset`). `formatted` is dated today for the current period, else the period's last day.",
        parameters=[NAME],
        responses=responses({200: CounterPeriodSerializer(many=True)}, 400, 401, 403, 404, 429, 503),
    ),
    values=extend_schema(
        summary="A gapless counter's log",
        description="Every number the counter handed out, newest first, 50 a page: issued, or voided with a "
        f"reason. {GAPLESS_ONLY}",
        parameters=[NAME, LOG_DATE, STATUS],
        responses=responses({200: IssuedValueSerializer(many=True)}, 400, 401, 403, 404, 409, 429, 503),
    ),
    value=extend_schema(
        summary="One number of a gapless counter",
        description="Who got the number, when, with what metadata; and if it was voided, by whom and why. "
        + GAPLESS_ONLY,
        parameters=[NAME, VALUE, NUMBER_DATE],
        responses=responses({200: IssuedValueSerializer}, 400, 401, 403, 404, 409, 429, 503),
    ),
    void=extend_schema(
        summary="Void a number",
        description="The number could not be used: it stays taken (never handed out again) and the log says who "
        f"voided it, when and why. Voiding it again is a 409 `already_voided`. Needs the `set` scope. {GAPLESS_ONLY}",
        parameters=[NAME, VALUE],
        request=VoidSerializer,
        responses=responses({200: IssuedValueSerializer}, 400, 401, 403, 404, 409, 413, 415, 429, 503),
    ),
    next=extend_schema(
        summary="Take the next value",
        description=PLAIN_TEXT
        + "\n\nA gapless counter records each number it hands out, with `metadata` if given (a JSON object of at "
        "most 2 KiB; on any other counter a 400 `not_gapless`), in the transaction that takes it.",
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
            the counter is set below it or deleted. A series takes a `date` (the document's, default
            today), which picks the period.""",
        ),
        "Periods": (
            "Periods",
            """Each period of a series (a counter with a `reset`) that has a value, newest first.""",
        ),
        "Values": (
            "Log",
            """Every number a gapless counter handed out, newest first, each issued or voided with a
            reason. `?date=` picks a series' period, `?status=issued` or `voided` filters.""",
        ),
        "Value": (
            "Number",
            """One number of a gapless counter: who got it, when, with which metadata.""",
        ),
        "Void": (
            "Void",
            """POST a `reason` to void the number: it stays taken, and the log says who voided it,
            when and why.""",
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
        "void": VoidSerializer,
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

    def _state(self, day=None):
        caller = self.request.auth
        return services.counter_get(
            owner_id=caller.owner_for_script(), caller=caller, name=self.kwargs["name"], day=day
        )

    def _data(self, state) -> dict:
        return counter_data(counters_url(self.request), self.kwargs.get("name"), state)

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
        states = services.counter_states(page, counted_for=owner, caller=caller)
        base = counters_url(request)
        return self.get_paginated_response(
            [
                counter_data(base, row.name, state._replace(created=services.rendered(row.created_at)))
                for row, state in zip(page, states, strict=True)
            ]
        )

    @idempotency.idempotent_change
    def create(self, request):
        serializer = CounterCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        owner = request.auth.owner("create", data["name"], revocation=True)
        state = services.counter_create(
            owner_id=owner,
            name=data["name"],
            value=data["value"],
            series=serializer.series(),
            actor=Actor.of(request, "api"),
        )
        self.kwargs["name"] = data["name"]
        body = self._data(state)
        response = self.respond(body, status.HTTP_201_CREATED)
        response["Location"] = body["url"]
        return response

    def retrieve(self, request, name):
        # The query string is looked at only when there is one (the steady read has none).
        day = _query_date(request) if request._request.META.get("QUERY_STRING") else None
        return self._respond(self._state(day))

    def update(self, request, name):
        data = request.data
        if hasattr(data, "keys") and (
            not SETTINGS.isdisjoint(data.keys()) or (request.method == "PATCH" and "value" not in data)
        ):
            return self._update_settings(request, name)
        data = CounterSetSerializer.validated(data)
        return self._set(request, name, data["value"], data.get("date"))

    def partial_update(self, request, name):  # its own function: its schema is not PUT's
        return self.update(request, name)

    def _set(self, request, name, value, day, idempotent=None):
        idempotent = idempotent or idempotency.of(request, value=value, **_date_of(day))
        caller = request.auth
        state = services.counter_set(
            owner_id=caller.owner_for_script(),
            caller=caller,
            name=name,
            value=value,
            idempotent=idempotent,
            actor=Actor.of(request, "api"),
            day=day,
        )
        return idempotency.mark(self._respond(state), state)

    def _update_settings(self, request, name):
        """A PUT or PATCH that names a setting, or a PATCH without a value. Everything is checked
        before anything changes (the Idempotency-Key too). A setting is checked against the
        counter's (in SQL: a rare request): `reset` and `timezone` may only repeat what they are;
        a new `format` is the counter's from then on. A `value` then sets the counter as any set
        does; a PATCH without one is a change of its own, kept under its Idempotency-Key."""
        serializer = CounterSettingsSerializer(data=request.data, partial=True)  # a form's missing field: absent
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "value" not in data:
            if request.method == "PUT":
                raise ValidationError({"value": ["This field is required."]}, code="required")
            return self._change_settings(request, name, data=data)
        idempotent = idempotency.of(request, value=data["value"], **_date_of(data.get("date")))
        self._settings_changed(request, name, data)
        return self._set(request, name, data["value"], data.get("date"), idempotent)

    @idempotency.idempotent_change
    def _change_settings(self, request, name, data):
        """A PATCH without a value: the format changed, or the counter as it is."""
        return self._respond(self._settings_changed(request, name, data) or self._state(data.get("date")))

    def _settings_changed(self, request, name, data):
        """Refuses a change of `reset` or `timezone`; changes the format. The counter's state
        after a new format, else None."""
        if SETTINGS.isdisjoint(data):
            return None
        owner = request.auth.owner("set", name, revocation=True)
        current = services.counter_settings(owner_id=owner, name=name)
        errors = {
            setting: [f"The {setting} is fixed once the counter is created (it is {getattr(current, setting)!r})."]
            for setting in ("reset", "timezone")
            if setting in data and data[setting] != getattr(current, setting)
        }
        if errors:
            raise ValidationError(errors, code=series.SETTING_FIXED)
        if "format" not in data or data["format"] == current.format:
            return None
        return services.counter_change_format(
            owner_id=owner, name=name, format=data["format"], actor=Actor.of(request, "api"), day=data.get("date")
        )

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
        if request.stream is None:
            step, day, metadata = 1, None, None
        else:
            data = CounterNextSerializer.validated(request.data)
            step, day, metadata = data["step"], data.get("date"), data.get("metadata")
        extra = _date_of(day)
        if metadata is not None:
            extra["metadata"] = metadata
        idempotent = idempotency.of(request, step=step, **extra)
        caller = request.auth
        try:
            state = services.counter_next(
                owner_id=caller.owner_for_script(),
                caller=caller,
                name=name,
                step=step,
                idempotent=idempotent,
                day=day,
                metadata=metadata,
                actor=Actor.later(request, "api"),
            )
        except gapless.NotGapless:
            raise ValidationError(
                {"metadata": ["This counter is not gapless: it keeps no record of each number, nor its metadata."]},
                gapless.NOT_GAPLESS,
            ) from None
        return idempotency.mark(self._respond(state), state)

    @action(detail=True, methods=["get"], name="Values")
    def values(self, request, name):
        """Every number a gapless counter handed out, newest first."""
        owner = request.auth.owner_in_sql("read", name)
        status_ = request.query_params.get("status")
        if status_ is not None and status_ not in ("issued", "voided"):
            raise ValidationError({"status": ["Must be issued or voided."]})
        entries = gapless.log(owner_id=owner, name=name, day=_query_date(request), status=status_)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(IssuedValueSerializer(page, many=True).data)

    @action(detail=True, methods=["get"], name="Value", url_path=r"values/(?P<value>[0-9]{1,19})")
    def value(self, request, name, value):
        """One number of a gapless counter."""
        owner = request.auth.owner_in_sql("read", name)
        found = gapless.entry(owner_id=owner, name=name, value=int(value), day=_query_date(request))
        return Response(IssuedValueSerializer(found).data)

    @action(detail=True, methods=["post"], name="Void", url_path=r"values/(?P<value>[0-9]{1,19})/void")
    def void(self, request, name, value):
        """Void a number handed out, with a reason."""
        owner = request.auth.owner_in_sql("set", name)
        data = self._valid(VoidSerializer)
        found = gapless.void(
            owner_id=owner,
            name=name,
            value=int(value),
            reason=data["reason"],
            day=data.get("date"),
            actor=Actor.of(request, "api"),
        )
        return Response(IssuedValueSerializer(found).data)

    @action(detail=True, methods=["get"], name="Periods")
    def periods(self, request, name):
        """Each period of a series that has a value, newest first."""
        owner = request.auth.owner("read", name, revocation=True)
        row = counter_list(owner_id=owner).filter(name=name).first()
        if row is None:
            raise NotFound()
        page = self.paginate_queryset(counter_periods(row))
        values = services.counter_periods(owner_id=owner, name=name, periods=[p.period for p in page])
        settings = row.series
        today = settings.today()
        return self.get_paginated_response(
            [
                {
                    "period": p.period,
                    "value": value,
                    "formatted": settings.render(value, settings.day_shown(p.period, today)),
                }
                for p, value in zip(page, values, strict=True)
            ]
        )


def _query_date(request):
    """`?date=2026-06-01` on a read: that day's period."""
    text = request.query_params.get("date")
    if text is None:
        return None
    try:
        return series.parse_date(text)
    except DjangoValidationError as exc:
        raise ValidationError({"date": exc.messages}, code=series.INVALID_DATE) from None


def _date_of(day) -> dict:
    """What a date adds to an Idempotency-Key's fingerprint: the date, when the request gave one."""
    return {} if day is None else {"date": day.isoformat()}
