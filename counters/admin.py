from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.http import QueryDict
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from counters import services, store
from counters.models import Counter
from counters.serializers import CounterSetSerializer

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
    """Reads the live values of the whole page from Redis in one round trip."""

    def get_results(self, request):
        super().get_results(request)
        rows = list(self.result_list)
        try:
            values = services.counter_values(rows)
        except (store.CounterStoreUnavailable, services.CounterNotFound):
            values = [None] * len(rows)
        for row, value in zip(rows, values, strict=True):
            row.live_value = value


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
    list_display = ["name", "owner_link", "value", "reserved_through", "created_at"]
    list_select_related = ["owner"]
    list_filter = [OwnerFilter, "created_at"]
    search_fields = ["name", "owner__username"]
    ordering = ["owner__username", "name"]
    readonly_fields = ["owner", "name", "value", "reserved_through", "created_at"]
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
        if hasattr(obj, "live_value"):  # the change list read the whole page at once
            live = obj.live_value
        else:
            try:
                live = services.counter_get(owner_id=obj.owner_id, name=obj.name, counted=False).value
            except (store.CounterStoreUnavailable, services.CounterNotFound):
                live = None
        return "unavailable" if live is None else live

    def has_add_permission(self, request):
        # Counters are created through the API, which also writes their Redis state.
        return False

    def delete_queryset(self, request, queryset):
        for counter in queryset:
            services.counter_delete(owner_id=counter.owner_id, name=counter.name)

    def delete_model(self, request, obj):
        services.counter_delete(owner_id=obj.owner_id, name=obj.name)

    def _set(self, request, queryset, value: int) -> None:
        try:
            for counter in queryset:
                services.counter_set(owner_id=counter.owner_id, name=counter.name, value=value)
        except store.CounterStoreUnavailable:
            self.message_user(request, "Counter storage is unavailable; nothing more was set.", messages.ERROR)
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
        self._set(request, queryset, 0)
