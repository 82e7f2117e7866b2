from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiKey, ProviderIdentity
from accounts.services import api_key_revoke


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ["name", "prefix", "counters", "actions", "expires_at", "created_at", "last_used_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class ProviderIdentityInline(admin.TabularInline):
    """The provider subjects that log in as this user (single sign-on); deleting one unlinks it."""

    model = ProviderIdentity
    fields = ["issuer", "subject", "created_at"]
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class IncrementificUserAdmin(UserAdmin):
    # counters/admin.py puts the user's counters first (accounts knows nothing of counters).
    inlines = [ApiKeyInline, ProviderIdentityInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "may", "expires_at", "created_at", "last_used_at"]
    list_select_related = ["user"]
    list_filter = [("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "name", "prefix", "counters", "actions", "expires_at", "created_at", "last_used_at"]
    fields = readonly_fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Keys are made through the API, which shows the key once; the admin never sees one.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="may")
    def may(self, key: ApiKey) -> str:
        actions = ", ".join(key.actions) if key.actions else "everything"
        counters = ", ".join(key.counters) if key.counters else "every counter"
        return f"{actions} on {counters}"

    @admin.action(description="Revoke selected API keys", permissions=["delete"])
    def revoke(self, request, queryset):
        keys = list(queryset)
        for key in keys:
            api_key_revoke(user_id=key.user_id, key_id=key.pk)
        self.message_user(request, f"Revoked {len(keys)} API key(s).", messages.SUCCESS)
