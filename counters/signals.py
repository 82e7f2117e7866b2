from django.db.models.signals import post_delete
from django.dispatch import receiver

from accounts.services import user_registered
from counters import store
from counters.models import DEFAULT_COUNTER, Counter
from counters.services import counter_create


@receiver(post_delete, sender=Counter)
def delete_counter_state(sender, instance: Counter, **kwargs) -> None:
    """Drop the Redis state with the row, whoever deletes it (the API, the admin, a cascade
    from a deleted user). It runs inside the deleting transaction, before the commit: if Redis
    fails, the delete rolls back, so no key outlives its row (a key without a row would let
    `next` answer for a counter that no longer exists).
    """
    store.delete(instance.owner_id, instance.name)


@receiver(user_registered)
def create_default_counter(sender, user, **kwargs) -> None:
    """Every account starts with a counter named `default` at 0 (the prototype's one counter)."""
    counter_create(owner_id=user.id, name=DEFAULT_COUNTER)
