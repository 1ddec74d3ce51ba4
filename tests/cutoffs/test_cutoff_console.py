"""The console and the CLI (DOMAIN §6, §8): cut-offs counting down, those at risk first, and today's timeline from now on."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from monitoring.summaries.models import MonitoredInterface
from tests.cutoffs.conftest import feed

pytestmark = pytest.mark.django_db


def test_the_console_counts_down_to_the_cut_offs_at_risk_first_and_shows_todays_timeline(make_cutoff, now, client, viewer, settings):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    now("2026-03-02T08:00:00Z")
    make_cutoff("Early bulk", time=dt.time(16, 45), interface=MonitoredInterface.objects.get(code="BATCH_PAYMENT_ORIGINATOR"))
    make_cutoff()
    feed(("P1", "200.25", "EUR", "2026-03-02T09:00:00Z", None), ("P2", "150.25", "EUR", "2026-03-02T10:00:00Z", None))
    now("2026-03-02T15:40:00Z")  # 16:40 in Berlin: TARGET2 customer (17:00) is at risk, Early bulk (16:45) has nothing pending
    client.force_login(viewer)

    data = client.get("/monitor/data/").json()

    assert [(c["name"], c["at_risk"], c["seconds_left"]) for c in data["cutoffs"]] == [
        ("TARGET2 customer", True, 20 * 60),
        ("Early bulk", False, 5 * 60),
    ]
    assert data["cutoffs"][0]["pending"] == [{"currency": "EUR", "count": 2, "value": "350.50"}]
    assert [(e["at"], e["kind"], e["subject"]) for e in data["timeline"]] == [
        ("2026-03-02T15:45:00Z", "CUTOFF", "Early bulk"),
        ("2026-03-02T16:00:00Z", "CUTOFF", "TARGET2 customer"),
    ]


def test_the_cutoffs_command_lists_the_countdown_at_the_clock_given(make_cutoff, now):
    now("2026-03-02T08:00:00Z")
    make_cutoff()
    feed(("P1", "200.25", "EUR", "2026-03-02T09:00:00Z", None))
    out = io.StringIO()
    call_command("cutoffs", "--now", "2026-03-02T15:40:00Z", stdout=out)
    assert out.getvalue().strip() == "TARGET2 customer [PAYMENT_ORIGINATOR]: 2026-03-02 16:00 (1200 s left): 1 pending, EUR 200.25  AT RISK"
