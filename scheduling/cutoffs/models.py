"""Cut-offs (DOMAIN §8): the time of day an interface's business must be done by, on a calendar group's business days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

from django.db import models

from monitoring.summaries.currencies import format_amount
from monitoring.summaries.models import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, MonitoredInterface
from portal import clock
from scheduling.scheduler.business_time import Calendar, wall_instant
from scheduling.scheduler.models import CalendarGroup

# How far ahead the next cut-off is looked for: a year and a day covers any calendar that opens at all.
HORIZON_DAYS = 367


def pending_summary(count: int, value: Decimal, currency: str) -> str:
    """The episode's sentence: ``2 pending, EUR 350.50`` (the value in the currency's minor units)."""
    return f"{count} pending, {currency} {format_amount(value, currency)}"


class CutOff(models.Model):
    """A scheme's cut-off on one interface: by ``time`` on each business day of its calendar group, while effective."""

    name = models.CharField(max_length=100, unique=True)
    interface = models.ForeignKey(MonitoredInterface, on_delete=models.PROTECT, related_name="cutoffs")
    currencies = models.JSONField(default=list, blank=True, help_text="ISO 4217 codes; empty: all")
    time = models.TimeField(help_text="a time of day in the calendar group's time zone")
    # A group's cut-offs go with it: the admin lists them on the deletion page.
    calendar_group = models.ForeignKey(CalendarGroup, on_delete=models.CASCADE, related_name="cutoffs")
    effective_from = models.DateField(null=True, blank=True)
    effective_to = models.DateField(null=True, blank=True)
    WARN_MINUTES_MAX = 7 * 24 * 60
    warn_minutes = models.PositiveIntegerField(default=30)
    min_value = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal(0))
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "cut-off"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True) | models.Q(effective_from__isnull=True)
                | models.Q(effective_to__gte=models.F("effective_from")),
                name="cutoff_effective_to_after_from",
            ),
            models.CheckConstraint(condition=models.Q(min_value__gte=0), name="cutoff_min_value_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def warning(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.warn_minutes)

    def is_effective(self, day: dt.date) -> bool:
        return (self.effective_from is None or day >= self.effective_from) and (self.effective_to is None or day <= self.effective_to)

    def falls_on(self, day: dt.date, calendar: Calendar) -> bool:
        """A business day of the group (its opening hours aside) inside the effective dates."""
        return self.is_effective(day) and calendar.is_business_day(day)

    def at_on(self, day: dt.date, calendar: Calendar) -> dt.datetime:
        """The instant of this cut-off on ``day``: the wall clock of the group's zone, DST or not."""
        return wall_instant(day, self.time, calendar.zone)

    def occurrences(self, start: dt.datetime, end: dt.datetime, calendar: Calendar) -> Iterator[tuple[dt.date, dt.datetime]]:
        """Each (local day, instant) of this cut-off with start <= instant < end, in order."""
        day = start.astimezone(calendar.zone).date() - dt.timedelta(days=1)
        if self.effective_from is not None:
            day = max(day, self.effective_from)
        last = end.astimezone(calendar.zone).date() + dt.timedelta(days=1)
        if self.effective_to is not None:
            last = min(last, self.effective_to)
        while day <= last:
            if self.falls_on(day, calendar):
                at = self.at_on(day, calendar)
                if start <= at < end:
                    yield day, at
            day += dt.timedelta(days=1)

    def next_at(self, now: dt.datetime, calendar: Calendar) -> tuple[dt.date, dt.datetime] | None:
        """The next cut-off after ``now`` (None: no business day within the horizon, or no longer effective)."""
        return next(self.occurrences(now + dt.timedelta(microseconds=1), now + dt.timedelta(days=HORIZON_DAYS), calendar), None)

    def pending_of(self, figures: dict[tuple[int, str], tuple[int, Decimal]]) -> dict[str, tuple[int, Decimal]]:
        """This cut-off's share of pending figures by (interface id, currency): its interface, its currencies."""
        return {
            currency: figure
            for (interface_id, currency), figure in sorted(figures.items())
            if interface_id == self.interface_id and (not self.currencies or currency in self.currencies) and figure[0]
        }

    def subject(self, day: dt.date, currency: str) -> str:
        return f"cutoff:{self.name}:{day.isoformat()}:{currency}"

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "interface": self.interface.code,
            "currencies": list(self.currencies),
            "time": self.time.strftime("%H:%M:%S"),
            "calendar_group": self.calendar_group.name,
            "effective_from": self.effective_from.isoformat() if self.effective_from else None,
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
            "warn_minutes": self.warn_minutes,
            "min_value": format(self.min_value.normalize(), "f"),
        }


class CutOffCheck(models.Model):
    """A cut-off's moment that the heartbeat has looked at for CUTOFF_MISSED: once, by whichever tick claims it."""

    cutoff = models.ForeignKey(CutOff, on_delete=models.CASCADE, related_name="checks")
    at = models.DateTimeField()
    checked_at = models.DateTimeField()
    missed = models.JSONField(default=dict, help_text="currency -> [count, value] left at the cut-off")

    class Meta:
        ordering = ["-at"]
        constraints = [models.UniqueConstraint(fields=["cutoff", "at"], name="cutoff_check_once")]

    def __str__(self) -> str:
        return f"{self.cutoff_id} at {self.at:%Y-%m-%d %H:%M}"
