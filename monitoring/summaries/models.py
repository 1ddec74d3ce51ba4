"""Batch monitor and summary models."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections, models
from django.db.models import Count, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Cast, Round

from monitoring.summaries.currencies import MAX_MINOR_UNITS, format_amount


class Direction(models.TextChoices):
    HOSTED = "HOSTED"  # a service the shop hosts
    INVOKED = "INVOKED"  # a service the shop calls


class MonitoredInterface(models.Model):
    """A payment interface whose business the portal summarises (DOMAIN §2)."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    inbound_channel = models.CharField(max_length=200, blank=True)
    outbound_channel = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def natural_key(self) -> tuple[str]:
        return (self.code,)


# --- transactions and summary events (DOMAIN §2, issue 5) ------------------------------


class TransactionStatus(models.TextChoices):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


# Amounts are stored with the most decimals any ISO 4217 currency has (CLF, UYW: 4)
# and up to 18 digits before the point.
AMOUNT_DECIMAL_PLACES = MAX_MINOR_UNITS
AMOUNT_MAX_DIGITS = 18 + AMOUNT_DECIMAL_PLACES


@dataclass(frozen=True)
class CurrencyTotals:
    """The five figures of one currency in one interface's summary."""

    currency: str
    pending_count: int = 0
    pending_value: Decimal = Decimal(0)
    completed_count: int = 0
    completed_value: Decimal = Decimal(0)
    failed_count: int = 0

    @property
    def is_zero(self) -> bool:
        return not (self.pending_count or self.pending_value or self.completed_count or self.completed_value or self.failed_count)

    def as_json(self) -> dict:
        """The ``totals`` item of a summary message: values in the currency's minor units, as strings."""
        return {
            "currency": self.currency,
            "pending_count": self.pending_count,
            "pending_value": format_amount(self.pending_value, self.currency),
            "completed_count": self.completed_count,
            "completed_value": format_amount(self.completed_value, self.currency),
            "failed_count": self.failed_count,
        }


class TransactionQuerySet(models.QuerySet):
    def summary_figures(self, *, start: dt.datetime, end: dt.datetime) -> dict[int, list[CurrencyTotals]]:
        """Per interface id, per currency, the summary figures over [start, end) (DOMAIN §2).

        Pending at the end: received before it and not completed or failed before
        it. Completed and failed: finished inside the interval. One aggregate
        query over the rows that can count (still open, or finished since the
        start); a currency with five zero figures is left out.
        """
        open_at_end = Q(completed_at__isnull=True) | Q(completed_at__gte=end)
        finished_inside = Q(completed_at__gte=start, completed_at__lt=end)
        completed = finished_inside & Q(status=TransactionStatus.COMPLETED)
        failed = finished_inside & Q(status=TransactionStatus.FAILED)
        rows = (
            self.filter(received_at__lt=end)
            .filter(Q(completed_at__isnull=True) | Q(completed_at__gte=start))
            .values("interface_id", "currency")
            .annotate(
                pending_count=Count("id", filter=open_at_end),
                completed_count=Count("id", filter=completed),
                failed_count=Count("id", filter=failed),
                **self._amount_sum("pending_value", open_at_end),
                **self._amount_sum("completed_value", completed),
            )
            .order_by("interface_id", "currency")
        )
        figures: dict[int, list[CurrencyTotals]] = {}
        for row in rows:
            totals = CurrencyTotals(
                currency=row["currency"],
                pending_count=row["pending_count"],
                pending_value=self._read_amount_sum(row, "pending_value"),
                completed_count=row["completed_count"],
                completed_value=self._read_amount_sum(row, "completed_value"),
                failed_count=row["failed_count"],
            )
            if not totals.is_zero:
                figures.setdefault(row["interface_id"], []).append(totals)
        return figures

    def pending_figures(self, *, received_before: dt.datetime, open_after: dt.datetime) -> dict[tuple[int, str], tuple[int, Decimal]]:
        """Per (interface id, currency): count and value received before ``received_before`` and not yet
        completed or failed at ``open_after`` (DOMAIN §8: a cut-off's pending, or what is left of it)."""
        rows = (
            self.filter(received_at__lt=received_before)
            .filter(Q(completed_at__isnull=True) | Q(completed_at__gt=open_after))
            .values("interface_id", "currency")
            .annotate(count=Count("id"), **self._amount_sum("value", None))
            .order_by("interface_id", "currency")
        )
        return {(row["interface_id"], row["currency"]): (row["count"], self._read_amount_sum(row, "value")) for row in rows}

    def _amount_sum(self, name: str, condition: Q | None) -> dict[str, Sum]:
        """SUM(amount) as an exact Decimal on every database.

        PostgreSQL sums ``numeric`` exactly. SQLite keeps NUMERIC values as
        binary floats, so its SUM would drift: there the whole units and the
        fraction (in units of the smallest stored decimal) are summed apart as
        integers and joined in Python.
        """
        if connections[self.db].vendor != "sqlite":
            return {name: Sum("amount", filter=condition)}
        whole = Cast(F("amount"), models.BigIntegerField())
        fraction = Cast(
            Round(
                ExpressionWrapper((F("amount") - whole) * Value(10**AMOUNT_DECIMAL_PLACES), output_field=models.FloatField())
            ),
            models.BigIntegerField(),
        )
        return {f"{name}_whole": Sum(whole, filter=condition), f"{name}_fraction": Sum(fraction, filter=condition)}

    @staticmethod
    def _read_amount_sum(row: dict, name: str) -> Decimal:
        if name in row:
            return Decimal(row[name] or 0)
        return Decimal(row[f"{name}_whole"] or 0) + Decimal(row[f"{name}_fraction"] or 0).scaleb(-AMOUNT_DECIMAL_PLACES)


class Transaction(models.Model):
    """One business transaction on an interface, as the feed reported it (DOMAIN §2).

    The feed carries the timestamps; the summaries follow them, not the time the
    feed happened to deliver a record (``created_at``/``updated_at`` record that).
    """

    # Indexed by the unique (interface, reference) and the summary index, which both start with it.
    interface = models.ForeignKey(MonitoredInterface, on_delete=models.PROTECT, related_name="transactions", db_index=False)
    reference = models.CharField(max_length=128)
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=9, choices=TransactionStatus.choices)
    received_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True, help_text="when it became COMPLETED or FAILED")
    created_at = models.DateTimeField(editable=False, help_text="when the feed first delivered it")
    updated_at = models.DateTimeField(editable=False, help_text="when the feed last changed it")

    objects = TransactionQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["interface", "reference"], name="transaction_reference_per_interface"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="transaction_amount_not_negative"),
            models.CheckConstraint(
                condition=models.Q(status=TransactionStatus.PENDING, completed_at__isnull=True)
                | models.Q(status__in=[TransactionStatus.COMPLETED, TransactionStatus.FAILED], completed_at__isnull=False),
                name="transaction_completed_at_iff_finished",
            ),
            models.CheckConstraint(
                condition=models.Q(completed_at__isnull=True) | models.Q(completed_at__gte=models.F("received_at")),
                name="transaction_completed_after_received",
            ),
        ]
        indexes = [
            # The summary query: per interface, the rows still open or finished since
            # the interval start (completed_at IS NULL OR completed_at >= start, two
            # ranges of this index), received before the end. Covering the other
            # columns too would double its size for no gain: PostgreSQL reads an OR of
            # ranges through a bitmap, from the table anyway.
            models.Index(fields=["interface", "completed_at", "received_at"], name="transaction_summary_idx"),
            models.Index(fields=["received_at"], name="transaction_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.status} {self.amount} {self.currency})"

    @classmethod
    def from_feed(
        cls,
        *,
        interface_id: int,
        reference: str,
        amount: Decimal,
        currency: str,
        status: str,
        received_at: dt.datetime,
        completed_at: dt.datetime | None,
        now: dt.datetime,
    ) -> Transaction:
        """A new, unsaved transaction from a feed record.

        Built with positional values in field order (id first), Django's fast
        path: a feed builds up to 10,000 at a time.
        """
        return cls(None, interface_id, reference, amount, currency, status, received_at, completed_at, now, now)

    @property
    def is_finished(self) -> bool:
        return self.status != TransactionStatus.PENDING

    def apply_feed(
        self,
        *,
        amount: Decimal,
        currency: str,
        status: str,
        received_at: dt.datetime,
        completed_at: dt.datetime | None,
    ) -> str:
        """Take a later feed record of this transaction: "updated" or "unchanged".

        Only a move forward (PENDING to COMPLETED or FAILED) changes it. The same
        record, or an older one (PENDING after it finished), changes nothing, so
        a feed can be replayed. Anything else contradicts what is recorded and
        raises ``TransactionContradiction``.
        """
        if amount != self.amount:
            raise TransactionContradiction("amount", f"{amount} contradicts the recorded amount {self.amount.normalize():f}")
        if currency != self.currency:
            raise TransactionContradiction("currency", f"{currency} contradicts the recorded currency {self.currency}")
        if received_at != self.received_at:
            raise TransactionContradiction(
                "received_at", f"{received_at.isoformat()} contradicts the recorded {self.received_at.isoformat()}"
            )
        if status == TransactionStatus.PENDING:
            return "unchanged"
        if not self.is_finished:
            self.status = status
            self.completed_at = completed_at
            return "updated"
        if status != self.status:
            raise TransactionContradiction("status", f"{status} contradicts the recorded status {self.status}")
        if completed_at != self.completed_at:
            raise TransactionContradiction(
                "completed_at", f"{completed_at.isoformat()} contradicts the recorded {self.completed_at.isoformat()}"
            )
        return "unchanged"


class TransactionTotal(models.Model):
    """How many transactions of an interface are in a status and currency, and their value:
    kept by the feed in the transaction that writes them (monitoring.summaries.totals), so
    ``/metrics`` reads a few rows instead of grouping the whole transactions table."""

    interface = models.ForeignKey(MonitoredInterface, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=9, choices=TransactionStatus.choices)
    currency = models.CharField(max_length=3)
    count = models.BigIntegerField(default=0)
    # A sum of up to billions of amounts: room for ten more integer digits than one amount.
    value = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS + 10, decimal_places=AMOUNT_DECIMAL_PLACES, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["interface", "status", "currency"], name="transaction_total_key"),
        ]

    def __str__(self) -> str:
        return f"{self.interface_id} {self.status} {self.currency}: {self.count} ({self.value})"


class TransactionContradiction(Exception):
    """A feed record that cannot be the same transaction as the recorded one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SummaryEvent(models.TextChoices):
    HOSTED_BEGIN = "FTMHostedServiceBeginSummary"
    HOSTED_END = "FTMHostedServiceEndSummary"
    INVOKED = "FTMInvokedServiceSummary"


# The events that carry the figures (the Begin summary only opens the interval).
FIGURE_EVENTS = (SummaryEvent.HOSTED_END, SummaryEvent.INVOKED)


class ServiceSummary(models.Model):
    """One summary event a HOSTED/INVOKED_SERVICE_MONITOR action emitted for one interface.

    A copy of what went to the outbox, kept for the admin and the API; one row per
    (task, interface, interval end, event), like the message's dedupe key.
    """

    task = models.CharField(max_length=200, help_text="the scheduler task's name")
    interface = models.ForeignKey(  # indexed by summary_interface_end_idx, which starts with it
        MonitoredInterface, on_delete=models.PROTECT, related_name="summaries", db_index=False
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    event = models.CharField(max_length=32, choices=SummaryEvent.choices)
    interval_start = models.DateTimeField()
    interval_end = models.DateTimeField()
    emitted_at = models.DateTimeField()
    totals = models.JSONField(default=list, help_text="per currency: counts and decimal-string values")
    message = models.OneToOneField(
        "portal.OutboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="service_summary"
    )

    class Meta:
        ordering = ["-interval_end", "-id"]
        verbose_name_plural = "service summaries"
        constraints = [
            models.UniqueConstraint(fields=["task", "interface", "interval_end", "event"], name="summary_once_per_interval"),
        ]
        indexes = [
            models.Index(fields=["interface", "-interval_end"], name="summary_interface_end_idx"),
            models.Index(fields=["interval_end"], name="summary_end_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.interface.code} ({self.task}) until {self.interval_end:%Y-%m-%d %H:%M:%S}"
