"""The demo of `make run` (DOMAIN §6, §8): CHAPS, TARGET2 and Fedwire cut-offs, and one at risk while it is up."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from scheduling.cutoffs.models import CutOff
from scheduling.scheduler.heartbeat import heartbeat_tick
from tests.cutoffs.conftest import episodes

pytestmark = pytest.mark.django_db


def test_the_demo_has_scheme_cut_offs_and_one_at_risk_on_the_first_tick(now, administrator, api_client_for):
    now("2026-03-07T09:00:00Z")  # a Saturday: only the always-open calendar has a business day
    call_command("load_demo", verbosity=0)
    names = set(CutOff.objects.values_list("name", flat=True))
    assert {"CHAPS customer", "TARGET2 customer", "Fedwire customer"} <= names

    heartbeat_tick()
    at_risk = episodes("CUTOFF_AT_RISK")
    assert {"cutoff:Intraday liquidity sweep:2026-03-07:EUR", "cutoff:Intraday liquidity sweep:2026-03-07:GBP"} <= set(at_risk)
    assert episodes("CUTOFF_MISSED") == {}  # yesterday's cut-offs came before the demo made them
    rows = {row["name"]: row for row in api_client_for(administrator).get("/api/v1/cutoffs/").json()["results"]}
    assert rows["Intraday liquidity sweep"]["seconds_left"] == 45 * 60
    assert rows["Fedwire customer (until last year)"]["next_at"] is None
    call_command("load_demo", verbosity=0)  # once
    assert CutOff.objects.count() == len(rows)
