from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from counters.models import Counter


class CounterInline(admin.TabularInline):
    model = Counter
    fields = ["name", "reserved_through", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class IncrementificUserAdmin(UserAdmin):
    inlines = [CounterInline]
