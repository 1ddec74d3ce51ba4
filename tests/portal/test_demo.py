"""The demo of `make run` (DOMAIN §6): what the product is for, on the console from the first minute."""

from __future__ import annotations

import pytest

from monitoring.batches.selectors import alerting_batches, held_arrivals_listing
from monitoring.summaries.selectors import summary_chart_series
from portal.services import demo_load
from scheduling.scheduler.models import SchedulerTask

pytestmark = pytest.mark.django_db


def test_make_runs_demo_fills_the_console_at_once(now):
    """The batch panel is not empty in the first minute, the summaries run on TARGET2 and NYSE with some history."""
    now("2026-03-10T09:17:00Z")  # a Tuesday: TARGET2 is open, NYSE not yet
    demo_load()

    assert {b["config"]: b["state"] for b in alerting_batches()} == {"GL_DAILY": "OPEN", "PAYMENTS_HOURLY": "DELAYED", "AR_DAILY": "OPEN"}
    assert [h["source"] for h in held_arrivals_listing()] == ["ar_invoices"]
    calendars = {task.name: sorted(g.name for g in task.calendar_groups.all()) for task in SchedulerTask.objects.all()}
    assert calendars == {"demo-batch-scan": [], "demo-hosted-summary": ["TARGET2"], "demo-invoked-summary": ["NYSE"]}
    points = {(s["interface"], s["currency"]): len(s["points"]) for s in summary_chart_series()}
    assert points[("PAYMENT_ORIGINATOR", "EUR")] > 10  # Berlin's morning, every 15 minutes, and now
    assert points[("PAYMENTS_GATEWAY", "USD")] == 1  # New York is not open yet: the first run only
