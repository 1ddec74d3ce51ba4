"""Scheduler-task actions and django-q2 tasks of the monitoring app: thin wrappers over services."""

from __future__ import annotations

from monitoring.batch_scan import batch_scan
from portal.lib.taskrun import TaskRun

# --- batch monitor (DOMAIN §1) -----------------------------------------------------


def batch_scan_action(run: TaskRun) -> None:
    """The action of BATCH_MONITOR tasks: scan the configs of the task's interfaces (all when none)."""
    batch_scan(now=run.interval_end, interface_codes=run.interface_codes)
