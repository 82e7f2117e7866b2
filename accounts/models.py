from django.conf import settings
from django.db import models

from accounts.scopes import KeyScope


class ApiKey(models.Model):
    """A long-lived credential for scripts and servers, revocable one by one.

    Only the SHA-256 of the key is stored. The key is 256 random bits (after the owner's id,
    see services.api_key_create), so a slow password hash would add nothing but latency to
    every request.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, help_text="The start of the key, to recognise it by.")
    hashed = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Least privilege (accounts/scopes.py): null is "all", as for a key made before scopes.
    counters = models.JSONField(null=True, blank=True, help_text="The counter names it may touch; null: all.")
    actions = models.JSONField(null=True, blank=True, help_text="What it may do (read, next, set, create, delete).")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When it stops working; null: never.")

    class Meta:
        ordering = ["user_id", "-created_at"]
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def scope(self) -> "KeyScope":
        return KeyScope.of(self.counters, self.actions, self.expires_at)


class TokenRevocation(models.Model):
    """When a user's access tokens were last revoked (epoch milliseconds): the durable copy of the
    mark a counter's script checks in Redis (incrementific.redis.keys.revocation). Redis's copy is
    fenced where a replica can be promoted; one a primary did not write itself, or none at all,
    is read from here. Keyed by the user's id alone: a deleted user's mark outlives them."""

    user_id = models.BigIntegerField(primary_key=True)
    mark = models.BigIntegerField()

    def __str__(self) -> str:
        return f"user {self.user_id}: tokens issued before {self.mark} refused"


class ProviderIdentity(models.Model):
    """A person or a service as an OpenID Connect provider knows them: its issuer and their
    subject (``sub``), which the provider never reuses. An account is found by these, never by
    e-mail alone (an address can change hands). accounts/oidc.py."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_identities")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="one_account_per_subject")]
        verbose_name = "provider identity"
        verbose_name_plural = "provider identities"

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
