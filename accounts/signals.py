from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts import keystore, store
from accounts.models import ApiKey, ProviderIdentity
from accounts.services import revoke_access_tokens


@receiver(post_delete, sender=ApiKey)
def forget_deleted_key(sender, instance: ApiKey, **kwargs) -> None:
    """Runs inside the deleting transaction (a revocation, a deleted user): if Redis fails, the
    delete rolls back, so no key keeps working after its row is gone."""
    keystore.forget([(instance.hashed, instance.user_id)])


@receiver(post_save, sender=get_user_model())
def revoke_credentials_of_inactive_users(sender, instance, **kwargs) -> None:
    """A deactivated user's keys and access tokens stop at once (refresh tokens check the user
    themselves); the key lookup's SQL fallback refuses to remember an inactive user's key, and a
    provider's token's, an inactive user's subject."""
    if not instance.is_active:
        keystore.forget(list(ApiKey.objects.filter(user_id=instance.pk).values_list("hashed", "user_id")))
        revoke_access_tokens(user_id=instance.pk)
        # A provider's later tokens then find the user in SQL, inactive: refused (accounts/oidc.py).
        identities = ProviderIdentity.objects.filter(user_id=instance.pk).values_list("issuer", "subject")
        store.identity_forget(list(identities))


@receiver(post_delete, sender=get_user_model())
def revoke_access_tokens_of_deleted_users(sender, instance, **kwargs) -> None:
    revoke_access_tokens(user_id=instance.pk)


@receiver(post_delete, sender=ProviderIdentity)
def forget_deleted_identity(sender, instance: ProviderIdentity, **kwargs) -> None:
    """A provider's tokens for a deleted account (or an unlinked subject) no longer name it."""
    store.identity_forget([(instance.issuer, instance.subject)])
