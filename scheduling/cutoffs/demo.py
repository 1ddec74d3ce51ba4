"""Demo cut-offs for `make run` (settings.DEMO_LOADERS), loaded once, after the calendars and the transactions.

CHAPS-, TARGET2- and Fedwire-like cut-offs (Fedwire's moved at the start of this year: two rows
with effective dates), and an intraday liquidity sweep set 45 minutes after the load with an
hour's warning and payments pending on it, so the console shows a cut-off at risk, counting down.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from monitoring.summaries.models import MonitoredInterface
from monitoring.summaries.services import transactions_feed
from portal import clock
from portal.lib.times import iso_utc
from scheduling.cutoffs.models import CutOff
from scheduling.cutoffs.services import cutoff_create
from scheduling.scheduler.calendars import calendar_group_create, holidays_import
from scheduling.scheduler.models import CalendarGroup

ACTOR = "load_demo"
SWEEP = "Intraday liquidity sweep"
# The sweep's pending payments: received half an hour before the load, still pending.
SWEEP_PENDING = [("DEMO-SWEEP-1", "125000.00", "EUR"), ("DEMO-SWEEP-2", "48250.75", "EUR"), ("DEMO-SWEEP-3", "310000.00", "GBP")]


def _group(name: str, timezone: str, weekend: list[int], holidays: str = "") -> CalendarGroup:
    group = CalendarGroup.objects.filter(name=name).first()
    if group is None:
        group = calendar_group_create(actor=ACTOR, name=name, timezone=timezone, weekend_days=weekend)
        year = clock.now().year
        for each in (year, year + 1) if holidays else ():
            holidays_import(actor=ACTOR, group=group, code=holidays, year=each)
    return group


def load_cutoff_demo() -> str:
    if CutOff.objects.exists():
        return "demo cut-offs already there"
    now = clock.now().replace(second=0, microsecond=0)
    new_year = dt.date(now.year, 1, 1)
    interface = {i.code: i for i in MonitoredInterface.objects.all()}
    chaps = _group("CHAPS", "Europe/London", [6, 7], "GB")
    target2 = CalendarGroup.objects.get(name="TARGET2")
    nyse = CalendarGroup.objects.get(name="NYSE")
    always = _group("24x7", "UTC", [])
    sweep_at = (now + dt.timedelta(minutes=45)).time()
    rows = [
        ("CHAPS customer", "PAYMENTS_GATEWAY", ["GBP"], dt.time(17, 40), chaps, None, None, 30),
        ("TARGET2 customer", "PAYMENT_ORIGINATOR", ["EUR"], dt.time(17, 0), target2, None, None, 30),
        ("TARGET2 bulk", "BATCH_PAYMENT_ORIGINATOR", ["EUR"], dt.time(16, 0), target2, None, None, 45),
        ("Fedwire customer (until last year)", "PAYMENTS_GATEWAY", ["USD"], dt.time(18, 0), nyse, None, new_year - dt.timedelta(days=1), 30),
        ("Fedwire customer", "PAYMENTS_GATEWAY", ["USD"], dt.time(18, 45), nyse, new_year, None, 30),
        (SWEEP, "LIQUIDITY_SERVICE", ["EUR", "GBP"], sweep_at, always, None, None, 60),
    ]
    for name, code, currencies, time, group, effective_from, effective_to, warn in rows:
        cutoff_create(
            actor=ACTOR, name=name, interface=interface[code], currencies=currencies, time=time, calendar_group=group,
            effective_from=effective_from, effective_to=effective_to, warn_minutes=warn, min_value=Decimal(0),
        )
    received = iso_utc(now - dt.timedelta(minutes=30))
    transactions_feed(
        items=[
            {"interface": "LIQUIDITY_SERVICE", "reference": reference, "amount": amount, "currency": currency,
             "status": "PENDING", "received_at": received, "completed_at": None}
            for reference, amount, currency in SWEEP_PENDING
        ]
    )
    return f"{len(rows)} demo cut-offs; {SWEEP!r} at {sweep_at:%H:%M} UTC is at risk with {len(SWEEP_PENDING)} payments pending"
