"""The demo data: open, delayed, held and complete batches, relative to the clock."""

from __future__ import annotations

import pytest

from monitoring.batches.demo import load_batch_demo
from monitoring.batches.models import BatchConfig, BatchFile
from monitoring.batches.scan import batch_scan
from portal import clock

pytestmark = pytest.mark.django_db


def alerts_by_config() -> dict[str, str]:
    return dict(BatchConfig.objects.values_list("name", "alert__state"))


def test_demo_has_open_delayed_and_complete_batches_on_the_first_scan(now, messages):
    now("2026-03-10T09:17:00Z")

    load_batch_demo()
    batch_scan(now=clock.now())

    assert alerts_by_config() == {
        "GL_DAILY": "OPEN",
        "PAYMENTS_HOURLY": "DELAYED",
        "LEGACY_EXPORT": "NONE",
        "AR_DAILY": "OPEN",
        "FX_RATES": "NONE",
        "TREASURY_HOURLY": "NONE",
    }
    assert list(BatchFile.objects.filter(held=True).values_list("source_name", flat=True)) == ["ar_invoices"]
    assert len(messages("COMPLETED")) >= 10 and len(messages("DUPLICATE")) == 1


def test_demo_loads_once(now):
    now("2026-03-10T09:17:00Z")
    load_batch_demo()

    assert load_batch_demo() == "batch demo already loaded"
    assert BatchConfig.objects.count() == 6

