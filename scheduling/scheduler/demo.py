"""Demo calendar groups for `make run` (never loaded by a migration)."""

from __future__ import annotations

import datetime as dt

from monitoring.summaries.models import MonitoredInterface
from portal import clock
from scheduling.scheduler.calendars import calendar_group_create, holidays_import
from scheduling.scheduler.models import CalendarGroup, SchedulerTask
from scheduling.scheduler.services import scheduler_task_create, scheduler_task_run_now

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


# name, subtype, interface codes, interval, calendar group: the batch scan over every config, always
# open (the batch panel moves on weekends too); the summaries on the business calendars they serve:
# euro payments on TARGET2, the gateway's US dollar business on NYSE (summaries only in their hours).
DEMO_TASKS = [
    ("demo-batch-scan", "BATCH_MONITOR", [], 60, None),
    ("demo-hosted-summary", "HOSTED_SERVICE_MONITOR", ["PAYMENT_ORIGINATOR", "BATCH_PAYMENT_ORIGINATOR"], 60, "TARGET2"),
    ("demo-invoked-summary", "INVOKED_SERVICE_MONITOR", ["LIQUIDITY_SERVICE", "REPAIR_SERVICE", "PAYMENTS_GATEWAY"], 60, "NYSE"),
]
# The summaries of the last hours, as the tasks would have emitted them inside business time, so
# the charts show history (and its gaps) at once; the batch scan runs once, so the batch panel
# is not empty in the first minute.
HISTORY = dt.timedelta(hours=6)
HISTORY_STEP = dt.timedelta(minutes=15)


def load_task_demo() -> str:
    """The demo scheduler tasks, created enabled, once, with their first runs."""
    made = []
    now = clock.now()
    for name, subtype, codes, interval, group in DEMO_TASKS:
        if SchedulerTask.objects.filter(name=name).exists():
            continue
        start = now - HISTORY if group else now
        with clock.frozen(start):
            task = scheduler_task_create(
                actor="load_demo",
                name=name,
                subtype=subtype,
                interval_seconds=interval,
                interfaces=list(MonitoredInterface.objects.filter(code__in=codes)),
                calendar_groups=list(CalendarGroup.objects.filter(name=group)),
            )
        for at in [start + HISTORY_STEP * i for i in range(1, HISTORY // HISTORY_STEP)] if group else []:
            if task.is_open(at):
                with clock.frozen(at):
                    task = scheduler_task_run_now(actor="load_demo", task=task, reason="demo history", inline=True)
        task = scheduler_task_run_now(actor="load_demo", task=task, reason="demo: first run", inline=True)
        made.append(f"{name} ({group or 'always open'})")
    return f"scheduler tasks created and run: {', '.join(made)}" if made else "scheduler tasks already there"
