"""Scheduler-task actions of the batch monitor: settings.SCHEDULER_ACTIONS names these."""

from __future__ import annotations

from monitoring.batches.scan import batch_scan
from portal.lib.taskrun import TaskRun


def batch_scan_action(run: TaskRun) -> None:
    """The action of BATCH_MONITOR tasks: scan the configs of the task's interfaces (all when none)."""
    batch_scan(now=run.interval_end, interface_codes=run.interface_codes)
