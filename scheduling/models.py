"""Scheduler tasks, calendar groups, the heartbeat and workflow jobs."""

from __future__ import annotations

# --- workflow jobs (DOMAIN §3): defined in job_models.py ---------------------------
from scheduling.job_models import (  # noqa: F401
    Job,
    JobAttempt,
    JobOrigin,
    JobStatus,
    SchedulerControl,
    Spool,
    WorkflowVersion,
)
