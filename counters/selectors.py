from django.db.models import QuerySet

from counters.models import Counter, CounterChange, CounterPeriod


def counter_list(*, owner_id: int) -> QuerySet[Counter]:
    """The owner's counters by name. Scoped here so that no view can forget the owner."""
    return Counter.objects.filter(owner_id=owner_id).order_by("name")


def counter_history(*, owner_id: int, name: str) -> QuerySet[CounterChange]:
    """The changes to the owner's counter ``name``, newest first (counters/history.py)."""
    return CounterChange.objects.filter(owner_id=owner_id, counter=name).select_related("actor")


def counter_periods(counter: Counter) -> QuerySet[CounterPeriod]:
    """The periods of a series that have a row (a number was taken or set in them), newest first."""
    return CounterPeriod.objects.filter(counter=counter).order_by("-period")
