"""Scheduler-task actions and django-q2 tasks of the monitoring app: thin wrappers over services."""

from __future__ import annotations

from monitoring.batch_scan import batch_scan
from monitoring.models import Direction
from monitoring.summaries import summaries_emit
from portal.lib.taskrun import TaskRun

# --- summary actions (issue 5): settings.SCHEDULER_ACTIONS names these ----------------


def hosted_summary_action(run: TaskRun) -> None:
    """A_ProcessHostedServiceSummary: Begin and End summaries of the task's hosted interfaces."""
    summaries_emit(run=run, direction=Direction.HOSTED)


def invoked_summary_action(run: TaskRun) -> None:
    """A_ProcessInvokedServiceSummary: one summary of each of the task's invoked interfaces."""
    summaries_emit(run=run, direction=Direction.INVOKED)


# --- batch monitor (DOMAIN §1) -----------------------------------------------------


def batch_scan_action(run: TaskRun) -> None:
    """The action of BATCH_MONITOR tasks: scan the configs of the task's interfaces (all when none)."""
    batch_scan(now=run.interval_end, interface_codes=run.interface_codes)
