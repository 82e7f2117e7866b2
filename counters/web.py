"""The web app's counter pages: the list with values, create, next, set and delete.

The same serializers validate the forms and the same services change the counters as in the API
(counters/views.py), so a page and an API call can never disagree on a rule or a message.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from counters import services, store
from counters.selectors import counter_list
from counters.serializers import CounterCreateSerializer, CounterSetSerializer
from incrementific.exceptions import describe
from incrementific.web import page, validated

PAGE_SIZE = 50


def next_url(request, name: str | None = None) -> str:
    """The absolute API address of `next` for one of the user's counters (the first by name,
    or "default"), for the "use it from curl" examples."""
    if name is None:
        name = counter_list(owner_id=request.user.id).values_list("name", flat=True).first() or "default"
    return request.build_absolute_uri(reverse("counter-next", kwargs={"name": name}))


def _message(exc: Exception) -> str:
    return str(describe(exc).detail)


def _back(request, name: str | None = None):
    """Back to the page of the list the form was on, at the counter's row."""
    url = reverse("web:home")
    number = request.POST.get("page", "")
    if number.isdigit() and number != "1":
        url += f"?page={number}"
    return redirect(url + (f"#c-{name}" if name else ""))


def _dashboard(request, *, status=200, create=None, row_errors=None):
    """The list of the user's counters, a page at a time, with their values in one round trip."""
    pages = Paginator(counter_list(owner_id=request.user.id), PAGE_SIZE)
    current = pages.get_page(request.GET.get("page") or request.POST.get("page"))
    rows = list(current.object_list)
    outage = None
    try:
        values = services.counter_values(rows, counted_for=request.user.id)
    except store.CounterStoreUnavailable as exc:
        # The names are in SQL: show them, say why the values are missing, as the admin does.
        outage, values, status = describe(exc), [None] * len(rows), 503
    row_errors = row_errors or {}
    context = {
        "outage": outage,
        "counters": [
            {"name": row.name, "value": value, "created_at": row.created_at, **row_errors.get(row.name, {})}
            for row, value in zip(rows, values, strict=True)
        ],
        "page_obj": current,
        "create": create or {"values": {}, "errors": {}},
        "next_url": next_url(request, rows[0].name if rows else None),
        "token_url": request.build_absolute_uri(reverse("token")),
    }
    return render(request, "web/dashboard.html", context, status=status)


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
    values = {"name": request.POST.get("name", ""), "value": request.POST.get("value", "")}
    data, errors = validated(CounterCreateSerializer, _without_blank_value(request.POST))
    status = 400
    if data is not None:
        try:
            state = services.counter_create(owner_id=request.user.id, name=data["name"], value=data["value"])
        except services.CounterAlreadyExists as exc:
            errors, status = {"name": [_message(exc)]}, 409
        except (services.CounterLimitReached, services.CounterOwnerMissing) as exc:
            errors, status = {"non_field_errors": [_message(exc)]}, describe(exc).status_code
        else:
            messages.success(request, f"Created “{data['name']}” at {state.value}.")
            return _back(request, data["name"])
    return _dashboard(request, status=status, create={"values": values, "errors": errors})


def _without_blank_value(post):
    """An empty "starting value" box means the default (0), as a missing field does in the API."""
    data = post.copy()
    if data.get("value", None) == "":
        del data["value"]
    return data


@page
@login_required
@require_POST
def take_next(request, name: str):
    try:
        state = services.counter_next(owner_id=request.user.id, name=name)
    except services.CounterNotFound:
        return _not_found(request)
    except services.CounterOverflow as exc:
        return _dashboard(request, status=409, row_errors={name: {"errors": [_message(exc)]}})
    messages.success(request, f"{name}: {state.value}")
    return _back(request, name)


@page
@login_required
@require_POST
def set_value(request, name: str):
    data, errors = validated(CounterSetSerializer, request.POST)
    if data is None:
        rejected = {"errors": errors.get("value", []), "rejected": request.POST.get("value", "")}
        return _dashboard(request, status=400, row_errors={name: rejected})
    try:
        state = services.counter_set(owner_id=request.user.id, name=name, value=data["value"])
    except services.CounterNotFound:
        return _not_found(request)
    messages.success(request, f"Set “{name}” to {state.value}. Its next value is {state.value + 1}.")
    return _back(request, name)


@page
@login_required
@require_http_methods(["GET", "POST"])
def delete(request, name: str):
    if request.method == "POST":
        try:
            services.counter_delete(owner_id=request.user.id, name=name)
        except services.CounterNotFound:
            return _not_found(request)
        messages.success(request, f"Deleted “{name}”.")
        return _back(request)
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
