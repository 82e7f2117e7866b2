from django.conf import settings
from django.db import models

from counters.series import (
    DEFAULT_TIMEZONE,
    FORMAT_MAX_LENGTH,
    RESETS,
    Series,
    validate_format,
    validate_reset,
    validate_timezone,
)
from incrementific.names import NAME_PATTERN, validate_counter_name  # noqa: F401  (migrations name it here)

MAX_VALUE = 2**63 - 1
DEFAULT_COUNTER = "default"  # every account starts with it (counters/signals.py)


class Counter(models.Model):
    """A named counter. Its value lives in Redis (counters/store.py), never in this table.

    `reserved_through` is the durable half of the design: no value above it has ever been handed
    out or set, and it only ever rises. When Redis forgets a counter, the counter resumes there.
    `primary` is the Redis primary whose reservation it is (its master_replid; '' on a single
    server): only that primary may extend it. Another primary takes it over first, and resumes
    above it (counters/services.py).

    A series (counters/series.py: `reset`, `timezone`, `format`) keeps one sequence per period,
    each with its own reservation (CounterPeriod); its `reserved_through` stays 0.

    A gapless counter (counters/gapless.py) is the exception: its value lives here, not in Redis.
    Its `reserved_through` (a series': each CounterPeriod's) is exactly the last number handed
    out, raised in the transaction that records that number (IssuedValue).
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="counters")
    name = models.CharField(max_length=64, validators=[validate_counter_name])
    reserved_through = models.BigIntegerField(default=0)
    primary = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    reset = models.CharField(
        max_length=8,
        choices=[(reset, reset) for reset in RESETS],
        blank=True,
        default="",
        validators=[validate_reset],
        help_text="A sequence per period (fixed once created); empty: one sequence forever.",
    )
    timezone = models.CharField(
        max_length=64,
        default=DEFAULT_TIMEZONE,
        validators=[validate_timezone],
        help_text="Where a period begins and what today is (fixed once created).",
    )
    format = models.CharField(
        max_length=FORMAT_MAX_LENGTH,
        blank=True,
        default="",
        validators=[validate_format],
        help_text="How the value prints: {value}, {value:05}, {year}, {yy}, {month}, {day}.",
    )
    gapless = models.BooleanField(
        default=False,
        help_text="Every number recorded as it is handed out, none skipped (fixed once created).",
    )

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

    @property
    def series(self) -> Series:
        """The settings ('' in the table for none, None in the API and in Series)."""
        return Series.of(self.reset or None, self.timezone, self.format or None, self.gapless)


class CounterPeriod(models.Model):
    """One period of a series (a year, a month, a day): its durable reservation, as a counter's
    `reserved_through` is for a counter without periods. A row exists once a number was taken or
    set in the period; its value lives in Redis, in the counter's hash."""

    counter = models.ForeignKey(Counter, on_delete=models.CASCADE, related_name="periods")
    period = models.CharField(max_length=10, help_text="2026, 2026-12 or 2026-12-31.")
    reserved_through = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["counter_id", "-period"]
        constraints = [
            models.UniqueConstraint(fields=["counter", "period"], name="period_unique_per_counter"),
            models.CheckConstraint(
                condition=models.Q(reserved_through__gte=0), name="period_reserved_through_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.period


class CounterChange(models.Model):
    """One change to a counter other than `next` (counters/history.py): who made it, where, from
    which value to which, and when. Kept after the counter is deleted, by its name."""

    class Kind(models.TextChoices):
        CREATE = "create"
        SET = "set"
        RESET = "reset"
        DELETE = "delete"
        FORMAT = "format"

    class Surface(models.TextChoices):
        API = "api", "API"
        V1 = "v1", "/v1"
        WEB = "web", "web app"
        ADMIN = "admin", "admin"
        OTHER = "other", "the service (a sign-up, a command)"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="counter_changes")
    counter = models.CharField(max_length=64, help_text="The counter's name (it may be deleted since).")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    period = models.CharField(max_length=10, blank=True, help_text="The period of a series the change was in.")
    old_value = models.BigIntegerField(null=True, blank=True)
    new_value = models.BigIntegerField(null=True, blank=True)
    # A format change's (the values stay None): the format before and after ('': the value alone).
    old_format = models.CharField(max_length=FORMAT_MAX_LENGTH, blank=True)
    new_format = models.CharField(max_length=FORMAT_MAX_LENGTH, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who did it: the owner, or a staff user in the admin.",
    )
    api_key_name = models.CharField(max_length=100, blank=True, verbose_name="API key name")
    api_key_prefix = models.CharField(max_length=32, blank=True, verbose_name="API key prefix")
    surface = models.CharField(max_length=8, choices=Surface.choices)
    at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=200, blank=True, verbose_name="request id")
    # A set's entry in the owner's Redis stream: moving it to SQL twice writes one row.
    stream_id = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["owner", "counter", "-at"], name="change_owner_counter_at")]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "stream_id"], condition=~models.Q(stream_id=""), name="change_once_per_stream_entry"
            )
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.FORMAT:
            return f"{self.counter}: format {self.old_format} -> {self.new_format}"
        return f"{self.counter}: {self.kind} {self.old_value} -> {self.new_value}"


class IssuedValue(models.Model):
    """One number of a gapless counter (counters/gapless.py), written in the transaction that
    hands it out: a number exists in the log exactly when it was handed out. A number that
    could not be used is voided with a reason, never deleted; a set that moves the counter up
    records the numbers it passes over as voided ("set")."""

    class Status(models.TextChoices):
        ISSUED = "issued"
        VOIDED = "voided"

    counter = models.ForeignKey(Counter, on_delete=models.CASCADE, related_name="issued")
    period = models.CharField(max_length=10, blank=True, help_text="The period of a series ('' without a reset).")
    value = models.BigIntegerField()
    formatted = models.TextField(help_text="The number as the counter's format printed it when it was handed out.")
    day = models.DateField(help_text="The document's date it was taken for (today, unless the request said).")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ISSUED)
    issued_at = models.DateTimeField(db_index=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    api_key_name = models.CharField(max_length=100, blank=True, verbose_name="API key name")
    api_key_prefix = models.CharField(max_length=32, blank=True, verbose_name="API key prefix")
    surface = models.CharField(max_length=8, choices=CounterChange.Surface.choices)
    request_id = models.CharField(max_length=200, blank=True, verbose_name="request id")
    metadata = models.JSONField(null=True, blank=True, help_text="What the request said of the number (2 KiB).")
    # The request's Idempotency-Key (its SHA-256, never the key) and what it asked for, on the last
    # number a request took: its retry gets the same answer, whatever Redis forgot.
    idempotency_key = models.CharField(max_length=64, blank=True, editable=False)
    fingerprint = models.TextField(blank=True, editable=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    voided_by_key_name = models.CharField(max_length=100, blank=True, verbose_name="voided with API key")
    voided_by_key_prefix = models.CharField(max_length=32, blank=True, verbose_name="voided with API key prefix")
    void_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["counter_id", "-id"]
        indexes = [models.Index(fields=["counter", "-id"], name="issued_counter_newest")]
        constraints = [
            models.UniqueConstraint(fields=["counter", "period", "value"], name="issued_once_per_period"),
            models.UniqueConstraint(
                fields=["counter", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="issued_once_per_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(value__gte=1), name="issued_value_positive"),
        ]

    def __str__(self) -> str:
        return self.formatted
