"""Scheduler-task actions and django-q2 tasks of the summaries: thin wrappers over services."""

from __future__ import annotations

from monitoring.summaries.emit import summaries_emit
from monitoring.summaries.models import Direction
from portal.lib.taskrun import TaskRun

# --- summary actions (issue 5): settings.SCHEDULER_ACTIONS names these ----------------


def hosted_summary_action(run: TaskRun) -> None:
    """A_ProcessHostedServiceSummary: Begin and End summaries of the task's hosted interfaces."""
    summaries_emit(run=run, direction=Direction.HOSTED)


def invoked_summary_action(run: TaskRun) -> None:
    """A_ProcessInvokedServiceSummary: one summary of each of the task's invoked interfaces."""
    summaries_emit(run=run, direction=Direction.INVOKED)
