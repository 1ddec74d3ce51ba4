"""Registers the scheduling app's models with Django: the scheduler tasks, the cut-offs and the workflow jobs."""

from __future__ import annotations

from scheduling.cutoffs.models import CutOff, CutOffCheck  # noqa: F401
from scheduling.scheduler.models import (  # noqa: F401
    CalendarEntry,
    CalendarGroup,
    ScheduleEntry,
    SchedulerTask,
    TaskTransition,
)
from scheduling.workflows.models import Job, JobAttempt, SchedulerControl, Spool, WorkflowVersion  # noqa: F401
