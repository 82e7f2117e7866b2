from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

MAX_VALUE = 2**63 - 1
NAME_PATTERN = r"[A-Za-z0-9_.\-]{1,64}"
# A name of `.` or `..` alone is a path step to every HTTP client that follows RFC 3986: curl
# asks for /api/counters/.. as /api/, so such a counter could never be reached by its URL. The
# URL patterns still match them, for any created before they were refused.
validate_counter_name = RegexValidator(
    rf"\A(?!\.\.?\Z){NAME_PATTERN}\Z",
    "Use 1 to 64 characters: letters, digits, '_', '.' or '-', and not '.' or '..' alone.",
    code="invalid_name",
)


class Counter(models.Model):
    """A named counter. Its value lives in Redis (counters/store/), never in this table.

    `reserved_through` is the durable half of the design: no value above it has ever been handed
    out or set, and it only ever rises. When Redis forgets a counter, the counter resumes there.
    `primary` is the Redis primary whose reservation it is (its master_replid; '' on a single
    server): only that primary may extend it. Another primary takes it over first, and resumes
    above it (counters/services.py).
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="counters")
    name = models.CharField(max_length=64, validators=[validate_counter_name])
    reserved_through = models.BigIntegerField(default=0)
    primary = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["owner_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="counter_unique_name_per_owner"),
            models.CheckConstraint(
                condition=models.Q(reserved_through__gte=0), name="counter_reserved_through_non_negative"
            ),
        ]

    def __str__(self) -> str:
        # What the admin labels a counter by (a user's page lists theirs); the owner has a column.
        return self.name
