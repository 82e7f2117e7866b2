"""The web app's counter pages: the list with values, create, next, set and delete.

The same serializers validate the forms and the same services change the counters as in the API
(counters/views.py), so a page and an API call can never disagree on a rule or a message.
"""

import json
import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from counters import gapless, history, series, services, store
from counters.history import Actor
from counters.models import CounterChange
from counters.selectors import counter_list
from counters.serializers import CounterCreateSerializer, CounterSetSerializer, VoidSerializer
from incrementific import idempotency
from incrementific.exceptions import describe
from incrementific.web import page, validated

PAGE_SIZE = 50
# How long a form sent twice waits for the first send's answer (see _patiently).
WAIT_FOR_FIRST_SECONDS = 3


def next_url(request, name: str | None = None) -> str:
    """The absolute API address of `next` for one of the user's counters (the first by name,
    or "default"), for the "use it from curl" examples."""
    if name is None:
        name = counter_list(owner_id=request.user.id).values_list("name", flat=True).first() or "default"
    return request.build_absolute_uri(reverse("counter-next", kwargs={"name": name}))


def _message(exc: Exception) -> str:
    return str(describe(exc).detail)


def _error_text(exc: Exception) -> str:
    """The message of an error the API answers as a 400 with fields, or any other."""
    detail = describe(exc).detail
    if isinstance(detail, dict):
        return " ".join(str(message) for messages_ in detail.values() for message in messages_)
    return str(detail)


def _back_to(request, name: str | None = None) -> str:
    """The page of the list the form was on, at the counter's row."""
    url = reverse("web:home")
    number = request.POST.get("page", "")
    if number.isdigit() and number != "1":
        url += f"?page={number}"
    return url + (f"#c-{name}" if name else "")


def _back(request, name: str | None = None):
    return redirect(_back_to(request, name))


def _dashboard(request, *, status=200, create=None, row_errors=None):
    """The list of the user's counters, a page at a time, with their values in one round trip."""
    pages = Paginator(counter_list(owner_id=request.user.id), PAGE_SIZE)
    current = pages.get_page(request.GET.get("page") or request.POST.get("page"))
    rows = list(current.object_list)
    outage = None
    try:
        states = services.counter_states(rows, counted_for=request.user.id)
    except store.CounterStoreUnavailable as exc:
        # The names are in SQL: show them, say why the values are missing, as the admin does.
        outage, states, status = describe(exc), [None] * len(rows), 503
    row_errors = row_errors or {}
    changes = _last_changes(request.user.id, [row.name for row in rows])
    context = {
        "outage": outage,
        "counters": [
            {
                "name": row.name,
                "value": None if state is None else state.value,
                "formatted": None if state is None else state.formatted,
                "period": None if state is None else state.period,
                "series": row.series,
                "created_at": row.created_at,
                "changes": changes.get(row.name, []),
                **row_errors.get(row.name, {}),
            }
            for row, state in zip(rows, states, strict=True)
        ],
        "page_obj": current,
        "create": create or {"values": {"timezone": series.DEFAULT_TIMEZONE}, "errors": {}},
        "resets": series.RESETS,
        "timezones": series.timezones(),
        "next_url": next_url(request, rows[0].name if rows else None),
        "token_url": request.build_absolute_uri(reverse("token")),
    }
    return render(request, "web/dashboard.html", context, status=status)


LAST_CHANGES = 3


def _last_changes(owner_id: int, names: list[str]) -> dict[str, list]:
    """The last few changes (counters/history.py) of each of these counters, in one query."""
    try:
        history.move_pending(owner_id)  # this process's sets; another's move within seconds
    except store.CounterStoreUnavailable:
        pass  # the page says Redis is down; the sets still there show once it is back
    found: dict[str, list] = {}
    for change in CounterChange.objects.filter(owner_id=owner_id, counter__in=names).select_related("actor")[:200]:
        kept = found.setdefault(change.counter, [])
        if len(kept) < LAST_CHANGES:
            kept.append(change)
    return found


@page
@require_GET
def home(request):
    if not request.user.is_authenticated:
        return render(request, "web/landing.html")
    return _dashboard(request)


@page
@login_required
@require_POST
def create(request):
    values = {
        field: request.POST.get(field, "") for field in ("name", "value", "reset", "timezone", "format", "gapless")
    }
    data, errors = validated(CounterCreateSerializer, _without_blanks(request.POST))
    if data is None:
        return _dashboard(request, status=400, create={"values": values, "errors": errors})
    settings = series.Series.of(data["reset"], data["timezone"], data["format"], data["gapless"])

    def change():
        try:
            state = services.counter_create(
                owner_id=request.user.id,
                name=data["name"],
                value=data["value"],
                series=settings,
                actor=Actor.of(request, "web"),
            )
        except services.CounterAlreadyExists as exc:
            errors, status = {"name": [_message(exc)]}, 409
        except (services.CounterLimitReached, services.CounterOwnerMissing) as exc:
            errors, status = {"non_field_errors": [_message(exc)]}, describe(exc).status_code
        else:
            return f"Created “{data['name']}” at {state.formatted}.", _back_to(request, data["name"])
        return _dashboard(request, status=status, create={"values": values, "errors": errors})

    what = {"name": data["name"], "value": data["value"], "series": settings.encoded()}
    return _once(request, idempotency.of_form(request, **what), change)


def _without_blanks(post):
    """An empty box means the default (a starting value of 0, no reset, UTC, no format), as a
    missing field does in the API."""
    data = post.copy()
    for field in ("value", "reset", "timezone", "format"):
        if data.get(field, None) == "":
            del data[field]
    return data


def _patiently(change):
    """``change()``; while the first of two sends of one form is still being answered (a double
    click that arrived during a reservation), wait for its answer rather than show a 409."""
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        try:
            return change()
        except idempotency.IdempotencyKeyInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _once(request, idempotent, change):
    """A create or a delete sent from a form: ``change()`` makes it and returns the message and
    the page to go to, or a page that says why not (nothing changed, nothing kept). Sent again
    with the form's key, it shows the first one's message and page, and changes nothing."""
    if idempotent is None:
        done = change()
    else:
        kept = _patiently(lambda: idempotency.begin(request.user.id, idempotent))
        if kept is not None:
            done = json.loads(kept)
        else:
            try:
                done = change()
            except BaseException:
                idempotency.release(request.user.id, idempotent)
                raise
            if isinstance(done, HttpResponse):
                idempotency.release(request.user.id, idempotent)
            else:
                idempotency.finish(request.user.id, idempotent, json.dumps(done).encode())
    if isinstance(done, HttpResponse):
        return done
    message, location = done
    messages.success(request, message)
    return redirect(location)


@page
@login_required
@require_POST
def take_next(request, name: str):
    idempotent = idempotency.of_form(request, step=1)
    try:
        state = _patiently(
            lambda: services.counter_next(
                owner_id=request.user.id, name=name, idempotent=idempotent, actor=Actor.of(request, "web")
            )
        )
    except services.CounterNotFound:
        return _not_found(request)
    except services.CounterOverflow as exc:
        return _dashboard(request, status=409, row_errors={name: {"errors": [_message(exc)]}})
    messages.success(request, f"{name}: {state.formatted}")
    return _back(request, name)


@page
@login_required
@require_POST
def set_value(request, name: str):
    data, errors = validated(CounterSetSerializer, request.POST)
    if data is None:
        rejected = {"errors": errors.get("value", []), "rejected": request.POST.get("value", "")}
        return _dashboard(request, status=400, row_errors={name: rejected})
    idempotent = idempotency.of_form(request, value=data["value"])
    try:
        state = _patiently(
            lambda: services.counter_set(
                owner_id=request.user.id,
                name=name,
                value=data["value"],
                idempotent=idempotent,
                actor=Actor.of(request, "web"),
            )
        )
    except services.CounterNotFound:
        return _not_found(request)
    except (gapless.BelowIssued, gapless.GapTooLarge) as exc:
        rejected = {"errors": [_error_text(exc)], "rejected": request.POST.get("value", "")}
        return _dashboard(request, status=describe(exc).status_code, row_errors={name: rejected})
    period = f" (in {state.period})" if state.period else ""
    messages.success(request, f"Set “{name}” to {state.value}{period}. Its next value is {state.value + 1}.")
    return _back(request, name)


@page
@login_required
@require_http_methods(["GET", "POST"])
def delete(request, name: str):
    if request.method == "POST":

        def change():
            try:
                services.counter_delete(owner_id=request.user.id, name=name, actor=Actor.of(request, "web"))
            except services.CounterNotFound:
                return _not_found(request)
            except gapless.LogKept as exc:
                return _dashboard(request, status=409, row_errors={name: {"errors": [_message(exc)]}})
            return f"Deleted “{name}”.", _back_to(request)

        return _once(request, idempotency.of_form(request), change)
    try:
        state = services.counter_get(owner_id=request.user.id, name=name)
    except services.CounterNotFound:
        return _not_found(request)
    context = {
        "value": state.value,
        "title": f"Delete {name}",
        "question": f"Delete “{name}”?",
        "action": reverse("web:counter-delete", args=[name]),
        "confirm": "Delete counter",
        "cancel": reverse("web:home") + f"#c-{name}",
    }
    return render(request, "web/counter_delete.html", context)


def _not_found(request):
    return render(request, "web/not_found.html", {"what": "counter"}, status=404)


@page
@login_required
@require_GET
def log(request, name: str):
    """A gapless counter's log, newest first, with a void form for each number still issued."""
    try:
        entries = gapless.log(owner_id=request.user.id, name=name)
    except (services.CounterNotFound, gapless.NotGapless):
        return _not_found(request)
    return _log_page(request, name, entries)


def _log_page(request, name, entries, *, status=200, void_value=None, void_errors=()):
    current = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "name": name,
        "entries": current,
        "page_obj": current,
        "void_value": void_value,
        "void_errors": void_errors,
    }
    return render(request, "web/counter_log.html", context, status=status)


@page
@login_required
@require_POST
def void(request, name: str, value: str):
    data, errors = validated(VoidSerializer, request.POST)
    try:
        if data is None:
            entries = gapless.log(owner_id=request.user.id, name=name)
            return _log_page(
                request, name, entries, status=400, void_value=int(value), void_errors=errors.get("reason", [])
            )
        gapless.void(
            owner_id=request.user.id, name=name, value=int(value), reason=data["reason"], actor=Actor.of(request, "web")
        )
    except (services.CounterNotFound, gapless.NotGapless, gapless.NotIssued):
        return _not_found(request)
    except gapless.AlreadyVoided:
        messages.info(request, f"{name}: {value} was voided already.")
    else:
        messages.success(request, f"{name}: voided {value}.")
    return redirect(reverse("web:counter-log", args=[name]) + f"#v-{value}")
