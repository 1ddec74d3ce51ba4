"""Fixtures of the cut-off tests: a TARGET2-like calendar, a cut-off on it, transactions fed as the API takes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from monitoring.summaries.models import MonitoredInterface
from monitoring.summaries.services import transactions_feed
from portal.alerts.models import AlertEpisode
from scheduling.cutoffs.models import CutOff
from scheduling.cutoffs.services import cutoff_create
from scheduling.scheduler.calendars import calendar_group_create
from scheduling.scheduler.heartbeat import heartbeat_tick

HOLIDAY = "2026-03-04"  # a Wednesday the calendar closes


@pytest.fixture
def target2(db):
    return calendar_group_create(
        actor="test", name="TARGET2", timezone="Europe/Berlin", weekend_days=[6, 7],
        entries=[{"date": dt.date.fromisoformat(HOLIDAY), "description": "closed"}],
    )


@pytest.fixture
def make_cutoff(target2) -> Callable[..., CutOff]:
    """A cut-off at 17:00 Europe/Berlin with 30 warning minutes on PAYMENT_ORIGINATOR, unless told."""

    def make(name: str = "TARGET2 customer", **fields) -> CutOff:
        values = {
            "interface": MonitoredInterface.objects.get(code="PAYMENT_ORIGINATOR"),
            "time": dt.time(17, 0),
            "calendar_group": target2,
            "warn_minutes": 30,
        }
        values.update(fields)
        return cutoff_create(actor="test", name=name, **values)

    return make


def feed(*items: tuple[str, str, str, str, str | None]) -> None:
    """(reference, amount, currency, received_at, completed_at or None) on PAYMENT_ORIGINATOR."""
    transactions_feed(
        items=[
            {
                "interface": "PAYMENT_ORIGINATOR", "reference": reference, "amount": amount, "currency": currency,
                "status": "COMPLETED" if completed else "PENDING", "received_at": received, "completed_at": completed,
            }
            for reference, amount, currency, received, completed in items
        ]
    )


@pytest.fixture
def tick(now) -> Callable[[str], None]:
    """One heartbeat tick at the instant given (UTC)."""

    def run(at: str) -> None:
        now(at)
        heartbeat_tick()

    return run


def episodes(kind: str, state: str | None = None) -> dict[str, str]:
    """subject -> summary of the episodes of ``kind`` (in ``state``, or unresolved)."""
    found = AlertEpisode.objects.filter(kind=kind)
    found = found.filter(state=state) if state else found.unresolved()
    return dict(found.values_list("subject", "summary"))

