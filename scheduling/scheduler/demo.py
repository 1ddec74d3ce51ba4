"""Demo calendar groups for `make run` (never loaded by a migration)."""

from __future__ import annotations

import datetime as dt

from monitoring.summaries.models import MonitoredInterface
from portal import clock
from scheduling.scheduler.calendars import calendar_group_create, holidays_import
from scheduling.scheduler.models import CalendarGroup, SchedulerTask
from scheduling.scheduler.services import scheduler_task_create

DEMO_GROUPS = [
    # name, time zone, weekend days, opening hours, holiday calendar
    ("TARGET2", "Europe/Berlin", [6, 7], [("OPERATING_DAY", dt.time(7, 0), dt.time(18, 0))], "TAR"),
    ("NYSE", "America/New_York", [6, 7], [("CORE_SESSION", dt.time(9, 30), dt.time(16, 0))], "NYSE"),
]


def load_demo() -> str:
    """The TARGET2 and NYSE calendars with this year's and next year's holidays, once."""
    year = clock.now().year
    made = []
    for name, timezone, weekend, periods, code in DEMO_GROUPS:
        if CalendarGroup.objects.filter(name=name).exists():
            continue
        group = calendar_group_create(
            actor="load_demo",
            name=name,
            timezone=timezone,
            weekend_days=weekend,
            schedule_entries=[{"type_code": t, "open_time": o, "close_time": c} for t, o, c in periods],
        )
        for each in (year, year + 1):
            holidays_import(actor="load_demo", group=group, code=code, year=each)
        made.append(name)
    return f"calendar groups created: {', '.join(made)}" if made else "calendar groups already there"


# name, subtype, interface codes, interval: the batch scan over every config, and one
# summary task per direction over the five default interfaces; no calendar group, so
# the demo moves on weekends too.
DEMO_TASKS = [
    ("demo-batch-scan", "BATCH_MONITOR", [], 60),
    ("demo-hosted-summary", "HOSTED_SERVICE_MONITOR", ["PAYMENT_ORIGINATOR", "BATCH_PAYMENT_ORIGINATOR"], 60),
    ("demo-invoked-summary", "INVOKED_SERVICE_MONITOR", ["LIQUIDITY_SERVICE", "REPAIR_SERVICE", "PAYMENTS_GATEWAY"], 60),
]


def load_task_demo() -> str:
    """The demo scheduler tasks, created enabled, once."""
    made = []
    for name, subtype, codes, interval in DEMO_TASKS:
        if SchedulerTask.objects.filter(name=name).exists():
            continue
        scheduler_task_create(
            actor="load_demo",
            name=name,
            subtype=subtype,
            interval_seconds=interval,
            interfaces=list(MonitoredInterface.objects.filter(code__in=codes)),
        )
        made.append(name)
    return f"scheduler tasks created: {', '.join(made)}" if made else "scheduler tasks already there"
