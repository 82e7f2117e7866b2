from django.db.models import QuerySet

from counters.models import Counter


def counter_list(*, owner_id: int) -> QuerySet[Counter]:
    """The owner's counters by name. Scoped here so that no view can forget the owner."""
    return Counter.objects.filter(owner_id=owner_id).order_by("name")
