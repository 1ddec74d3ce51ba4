"""The scheduler's alerts to people (DOMAIN §7): TASK_ERROR while a task is in ERROR, and the dispatcher watched by the clock."""

from __future__ import annotations

import datetime as dt

from portal.alerts.models import AlertKind
from portal.alerts.services import alert_follow, alert_open, alert_resolve
from portal.lib.times import iso_utc
from scheduling.scheduler.models import SchedulerTask
from scheduling.workflows.models import SchedulerControl


def task_error_alert_follow(task: SchedulerTask, *, was_failing: bool) -> None:
    """Called by every transition (``task_move``): the episode opens when the task enters ERROR and ends when it leaves."""
    if task.is_failing == was_failing:
        return
    subject = f"task:{task.name}"
    if not task.is_failing:
        alert_resolve(kind=AlertKind.TASK_ERROR, subject=subject)
        return
    codes = ",".join(sorted(interface.code for interface in task.interfaces.all()))
    alert_open(
        kind=AlertKind.TASK_ERROR,
        subject=subject,
        summary=f"scheduler task {task.name} ({task.subtype}) is in ERROR: {task.last_error}",
        interface=codes,
    )


def dispatcher_watch(*, now: dt.datetime) -> None:
    """DISPATCHER_STALE, raised by the clock: no sign of the dispatcher for DISPATCHER_STALE_SECONDS while the scheduler runs."""
    control = SchedulerControl.load()
    stale = control.dispatcher_is_stale(now)
    summary = ""
    if stale:
        summary = (
            f"no sign of the job dispatcher since {iso_utc(control.dispatcher_seen_at)}: no workflow job starts "
            "and no Zombie is found; is the dispatcher process up?"
        )
    alert_follow(kind=AlertKind.DISPATCHER_STALE, subject="dispatcher", active=stale, summary=summary)
