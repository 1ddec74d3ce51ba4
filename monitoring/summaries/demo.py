"""Demo transactions for `make run` (settings.DEMO_LOADERS), loaded once."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from monitoring.summaries.currencies import minor_units
from monitoring.summaries.models import MonitoredInterface, Transaction
from monitoring.summaries.services import transactions_feed
from portal import clock
from portal.lib.times import iso_utc

DEMO_PREFIX = "DEMO-"
DEMO_COUNT = 400
# Currency and a typical amount; JPY has no minor unit, BHD three.
CURRENCIES = [("EUR", 2500), ("EUR", 400), ("USD", 1800), ("GBP", 950), ("JPY", 120000), ("CHF", 3000), ("BHD", 75)]


def load_transaction_demo() -> str:
    """A day of business on the five default interfaces, and two hours still to come.

    Timestamps are relative to the clock: transactions received over the last 22
    hours and the next 2, each finishing (or not) up to 90 minutes later, so the
    summaries of a freshly started portal keep showing business moving.
    """
    if Transaction.objects.filter(reference__startswith=DEMO_PREFIX).exists():
        return "demo transactions already loaded"
    rng = random.Random(20260302)
    now = clock.now().replace(microsecond=0)
    interfaces = list(MonitoredInterface.objects.order_by("code").values_list("code", flat=True))
    items = [_demo_item(rng, now, interfaces, number) for number in range(1, DEMO_COUNT + 1)]
    report = transactions_feed(items=items)
    return f"{report.applied} demo transactions over {len(interfaces)} interfaces"


def _demo_item(rng: random.Random, now: dt.datetime, interfaces: list[str], number: int) -> dict:
    interface = rng.choice(interfaces)
    currency, typical = rng.choice(CURRENCIES)
    units = minor_units(currency)
    amount = Decimal(int(rng.lognormvariate(0, 0.8) * typical * 10**units)).scaleb(-units)
    received_at = now - dt.timedelta(hours=22) + dt.timedelta(seconds=rng.randrange(24 * 3600))
    outcome = rng.random()
    status = "COMPLETED" if outcome < 0.85 else "FAILED" if outcome < 0.93 else "PENDING"
    completed_at = received_at + dt.timedelta(seconds=rng.randrange(60, 90 * 60)) if status != "PENDING" else None
    return {
        "interface": interface,
        "reference": f"{DEMO_PREFIX}{interface[:3]}-{number:05d}",
        "amount": format(amount, "f"),
        "currency": currency,
        "status": status,
        "received_at": iso_utc(received_at),
        "completed_at": iso_utc(completed_at) if completed_at else None,
    }
