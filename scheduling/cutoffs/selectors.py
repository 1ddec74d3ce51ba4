"""Reads of cut-offs that span relations: their calendars, their next moment and their pending now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from monitoring.summaries.models import Transaction
from scheduling.cutoffs.models import CutOff
from scheduling.scheduler.selectors import group_prefetches


def cutoffs_listing() -> QuerySet[CutOff]:
    """Cut-offs with what answering for them needs: the interface, the group and its calendar, no query per row."""
    return CutOff.objects.select_related("interface", "calendar_group").prefetch_related(*group_prefetches("calendar_group__"))


def pending_now(*, now: dt.datetime) -> dict[tuple[int, str], tuple[int, Decimal]]:
    """The pending at ``now`` per currency of every interface a cut-off watches: one query, shared by all cut-offs.

    Naming the interfaces lets PostgreSQL read the open rows from the summary index (interface,
    completed_at, ...) instead of scanning the table.
    """
    interfaces = sorted(set(CutOff.objects.values_list("interface_id", flat=True)))
    return Transaction.objects.filter(interface_id__in=interfaces).pending_figures(received_before=now, open_after=now)


@dataclass(frozen=True)
class CutOffState:
    """A cut-off as the API, the console and the metrics show it at ``now``."""

    cutoff: CutOff
    now: dt.datetime
    next_day: dt.date | None
    next_at: dt.datetime | None
    pending: dict[str, tuple[int, Decimal]]

    @property
    def seconds_left(self) -> int | None:
        return None if self.next_at is None else int((self.next_at - self.now).total_seconds())

    @property
    def in_warning(self) -> bool:
        return self.next_at is not None and self.now >= self.next_at - self.cutoff.warning

    @property
    def at_risk(self) -> dict[str, tuple[int, Decimal]]:
        """DOMAIN §8: inside the warning time, each currency whose pending value is above the minimum."""
        if not self.in_warning:
            return {}
        return {currency: figure for currency, figure in self.pending.items() if figure[1] > self.cutoff.min_value}


def cutoff_states(cutoffs, *, now: dt.datetime, figures: dict | None = None) -> list[CutOffState]:
    """Each cut-off's next moment and its pending now (``figures``: ``pending_now``, read here when not given)."""
    figures = pending_now(now=now) if figures is None else figures
    states = []
    for cutoff in cutoffs:
        found = cutoff.next_at(now, cutoff.calendar_group.calendar())
        day, at = found if found else (None, None)
        states.append(CutOffState(cutoff, now, day, at, cutoff.pending_of(figures)))
    return states
