"""Retention of the scheduler tasks (DOMAIN §9): their transitions."""

from __future__ import annotations

import datetime as dt

from portal.lib.bulk import rows_delete
from scheduling.scheduler.models import TaskTransition


def task_transitions_prune(*, before: dt.datetime, batch_size: int) -> dict[str, int]:
    """Transitions older than ``before``: the task's state is on the task, the history is the record."""
    old = TaskTransition.objects.filter(at__lt=before)
    return {"task transitions": rows_delete(old, batch_size=batch_size)[TaskTransition._meta.label]}
