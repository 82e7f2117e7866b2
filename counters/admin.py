from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.http import QueryDict
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from accounts.admin import IncrementificUserAdmin
from counters import gapless, history, services, store
from counters.history import Actor
from counters.models import Counter, CounterChange, IssuedValue
from counters.selectors import counter_history, counter_periods
from counters.serializers import CounterSetSerializer

HISTORY_ON_PAGE = 20
PERIODS_ON_PAGE = 100


def _who(change: CounterChange) -> str:
    who = change.actor.username if change.actor else "nobody known"
    return f"{who}, API key {change.api_key_name or '?'} ({change.api_key_prefix}…)" if change.api_key_prefix else who


admin.site.site_header = "incrementific administration"
admin.site.site_title = "incrementific admin"
admin.site.index_title = "Users, counters and keys"


class OwnerFilter(admin.SimpleListFilter):
    """Counters of one owner, by username. A text box rather than Django's list of every user,
    which would be ten thousand links long; each owner in the list links here too."""

    title = "owner"
    parameter_name = "owner"
    template = "admin/counters/counter/owner_filter.html"

    def lookups(self, request, model_admin):
        return ()

    def has_output(self) -> bool:
        return True

    def choices(self, changelist):
        # The form keeps every other filter and the search, and starts again at page one.
        kept = QueryDict(changelist.get_query_string(remove=[self.parameter_name, "p"]).lstrip("?"))
        yield {"hidden": [(key, value) for key, values in kept.lists() for value in values], "value": self.value()}

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(owner__username__iexact=self.value())
        return queryset


class LiveValueChangeList(ChangeList):
    """Reads the live values of the whole page from Redis in one round trip (a series': its
    current period's)."""

    def get_results(self, request):
        super().get_results(request)
        rows = list(self.result_list)
        try:
            states = services.counter_states(rows)
        except (store.CounterStoreUnavailable, services.CounterNotFound):
            states = [None] * len(rows)
        for row, state in zip(rows, states, strict=True):
            row.live_state = state


def _shown(state) -> str:
    """A value as the admin shows it: a series' with its print and its period."""
    if state is None:
        return "unavailable"
    if state.period or state.series.format:
        return f"{state.value} ({state.formatted}{', ' + state.period if state.period else ''})"
    return str(state.value)


class SetValueForm(forms.Form):
    """The value is checked by the API's own serializer: the same rules and messages as
    PUT /api/counters/<name> and the web app (Django's IntegerField takes "1.0" and " 5")."""

    value = forms.CharField(label="New value", strip=False, help_text="A whole number from 0 to 2^63-1.")

    def clean_value(self) -> int:
        form = QueryDict(mutable=True)  # a form post, as the serializer knows one: digits are a number
        form["value"] = self.cleaned_data["value"]
        serializer = CounterSetSerializer(data=form)
        if not serializer.is_valid():
            raise forms.ValidationError(serializer.errors["value"])
        return serializer.validated_data["value"]


@admin.register(Counter)
class CounterAdmin(admin.ModelAdmin):
    list_display = ["name", "owner_link", "value", "reset", "gapless", "reserved_through", "created_at"]
    list_select_related = ["owner"]
    list_filter = [OwnerFilter, "reset", "gapless", "created_at"]
    search_fields = ["name", "owner__username"]
    ordering = ["owner__username", "name"]
    readonly_fields = [
        "owner",
        "name",
        "value",
        "reset",
        "timezone",
        "format",
        "gapless",
        "reserved_through",
        "periods",
        "log",
        "created_at",
        "history",
    ]
    fields = readonly_fields
    actions = ["set_value", "reset_to_zero"]

    def get_changelist(self, request, **kwargs):
        return LiveValueChangeList

    @admin.display(description="owner", ordering="owner__username")
    def owner_link(self, obj: Counter):
        url = (
            reverse("admin:counters_counter_changelist")
            + "?"
            + QueryDict.fromkeys(["owner"], obj.owner.username).urlencode()
        )
        return format_html(
            '<a href="{}" title="Only the counters of {}">{}</a>', url, obj.owner.username, obj.owner.username
        )

    @admin.display(description="value")
    def value(self, obj: Counter):
        if hasattr(obj, "live_state"):  # the change list read the whole page at once
            return _shown(obj.live_state)
        try:
            [state] = services.counter_states([obj])
        except (store.CounterStoreUnavailable, services.CounterNotFound):
            state = None
        return _shown(state)

    @admin.display(description="periods (newest first)")
    def periods(self, obj: Counter):
        if not obj.reset:
            return "none: one sequence, without a reset"
        rows = list(counter_periods(obj)[:PERIODS_ON_PAGE])
        try:
            values = services.counter_periods(owner_id=obj.owner_id, name=obj.name, periods=[p.period for p in rows])
        except store.CounterStoreUnavailable:
            values = ["unavailable"] * len(rows)
        table = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((p.period, value, p.reserved_through) for p, value in zip(rows, values, strict=True)),
        )
        return format_html(
            "<table><thead><tr><th>period</th><th>value</th><th>reserved through</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            table or format_html("<tr><td colspan=3>none yet: a period appears with its first number</td></tr>"),
        )

    @admin.display(description="log")
    def log(self, obj: Counter):
        if not obj.gapless:
            return "none: a fast counter records no number"
        url = (
            reverse("admin:counters_issuedvalue_changelist")
            + "?"
            + QueryDict.fromkeys(["counter__id__exact"], obj.pk).urlencode()
        )
        issued = obj.issued.filter(status=IssuedValue.Status.ISSUED).count()
        voided = obj.issued.filter(status=IssuedValue.Status.VOIDED).count()
        return format_html('<a href="{}">{} issued, {} voided</a>', url, issued, voided)

    @admin.display(description="last changes")
    def history(self, obj: Counter):
        try:
            history.move(obj.owner_id)
        except store.CounterStoreUnavailable:
            pass  # the sets still in Redis show once it answers
        changes = counter_history(owner_id=obj.owner_id, name=obj.name)[:HISTORY_ON_PAGE]
        url = reverse("admin:counters_counterchange_changelist") + "?" + QueryDict.fromkeys(["q"], obj.name).urlencode()
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c.at.strftime("%Y-%m-%d %H:%M:%S"),
                    c.kind,
                    c.period,
                    c.old_format if c.kind == CounterChange.Kind.FORMAT else c.old_value,
                    c.new_format if c.kind == CounterChange.Kind.FORMAT else c.new_value,
                    _who(c),
                    c.get_surface_display(),
                )
                for c in changes
            ),
        )
        return format_html(
            "<table><thead><tr><th>when (UTC)</th><th>what</th><th>period</th><th>old</th><th>new</th><th>who</th>"
            "<th>where</th>"
            '</tr></thead><tbody>{}</tbody></table><p><a href="{}">All changes of counters named {}</a></p>',
            rows or format_html("<tr><td colspan=7>none</td></tr>"),
            url,
            obj.name,
        )

    def has_add_permission(self, request):
        # Counters are created through the API, which also writes their Redis state.
        return False

    # The admin may delete a gapless counter that handed out numbers, and its log with it (the API
    # refuses: gapless.LogKept); Django's confirmation page lists the log entries that go.
    def delete_queryset(self, request, queryset):
        for counter in queryset:
            services.counter_delete(
                owner_id=counter.owner_id, name=counter.name, actor=Actor.of(request, "admin"), keep_log=False
            )

    def get_deleted_objects(self, objs, request):
        # A log entry cannot be deleted on its own (IssuedValueAdmin), but goes with its counter:
        # the confirmation page lists the entries, and asks for no permission on them.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(IssuedValue._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        services.counter_delete(owner_id=obj.owner_id, name=obj.name, actor=Actor.of(request, "admin"), keep_log=False)

    def _set(self, request, queryset, value: int, kind: str = CounterChange.Kind.SET) -> None:
        actor = Actor.of(request, "admin")
        try:
            for counter in queryset:
                services.counter_set(owner_id=counter.owner_id, name=counter.name, value=value, actor=actor, kind=kind)
        except store.CounterStoreUnavailable:
            self.message_user(request, "Counter storage is unavailable; nothing more was set.", messages.ERROR)
            return
        except (gapless.BelowIssued, gapless.GapTooLarge) as exc:
            problem = "it handed out numbers above it" if isinstance(exc, gapless.BelowIssued) else "too far at once"
            self.message_user(
                request,
                f"{counter.name} is gapless and cannot be set to {value}: {problem}; nothing more was set.",
                messages.ERROR,
            )
            return
        self.message_user(request, f"Set {queryset.count()} counter(s) to {value}.", messages.SUCCESS)

    @admin.action(description="Set selected counters to a value", permissions=["change"])
    def set_value(self, request, queryset):
        form = SetValueForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._set(request, queryset, form.cleaned_data["value"])
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Set counters to a value",
            "opts": self.model._meta,
            "counters": queryset,
            "form": form,
            "action": "set_value",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/counters/counter/set_value.html", context)

    @admin.action(description="Reset selected counters to 0", permissions=["change"])
    def reset_to_zero(self, request, queryset):
        self._set(request, queryset, 0, CounterChange.Kind.RESET)


class RecordAdmin(admin.ModelAdmin):
    """A record's admin: it is read, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CounterChange)
class CounterChangeAdmin(RecordAdmin):
    """Every change to a counter but `next`, newest first: read-only, as a record should be."""

    list_display = [
        "at",
        "owner",
        "counter",
        "kind",
        "period",
        "old_value",
        "new_value",
        "who",
        "surface",
        "request_id",
    ]
    list_select_related = ["owner", "actor"]
    list_filter = [OwnerFilter, "surface", "kind", "at"]
    search_fields = ["counter", "owner__username", "request_id", "api_key_prefix"]
    date_hierarchy = "at"

    @admin.display(description="who")
    def who(self, change: CounterChange) -> str:
        return _who(change)

    def changelist_view(self, request, extra_context=None):
        try:
            history.move_all()  # the sets still in Redis first
        except store.CounterStoreUnavailable:
            self.message_user(request, "Redis is unavailable: the latest sets may be missing.", messages.WARNING)
        return super().changelist_view(request, extra_context)


@admin.register(IssuedValue)
class IssuedValueAdmin(RecordAdmin):
    """Every number gapless counters handed out: read-only, as a record should be. A number is
    voided through the API or the web app, by its owner, with a reason."""

    list_display = [
        "formatted",
        "counter",
        "owner",
        "period",
        "value",
        "status",
        "issued_at",
        "issued_by",
        "surface",
        "void_reason",
    ]
    list_select_related = ["counter__owner", "issued_by"]
    list_filter = ["status", "period", "surface", "issued_at"]
    search_fields = ["counter__name", "counter__owner__username", "formatted", "request_id", "void_reason"]
    date_hierarchy = "issued_at"
    exclude = ["idempotency_key", "fingerprint"]

    @admin.display(description="owner", ordering="counter__owner__username")
    def owner(self, entry: IssuedValue) -> str:
        return entry.counter.owner.username


class CounterInline(admin.TabularInline):
    """A user's counters with their live values, all read in one Redis round trip."""

    model = Counter
    fields = ["name", "value", "reset", "reserved_through", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="value")
    def value(self, obj: Counter):
        # Django makes the inline anew for each request, so this reads one user's values once.
        if not hasattr(self, "_values"):
            rows = list(Counter.objects.filter(owner_id=obj.owner_id))
            try:
                states = services.counter_states(rows)
            except (store.CounterStoreUnavailable, services.CounterNotFound):
                states = [None] * len(rows)
            self._values = {row.pk: state for row, state in zip(rows, states, strict=True)}
        return _shown(self._values.get(obj.pk))


# A user's page shows their counters first, above the API keys and identities that accounts shows.
IncrementificUserAdmin.inlines = [CounterInline, *IncrementificUserAdmin.inlines]
