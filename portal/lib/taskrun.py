"""What a scheduler task hands to its subtype's action (DOMAIN §2).

Actions are plain functions ``action(run: TaskRun) -> None`` named by dotted path
in ``settings.SCHEDULER_ACTIONS`` (subtype -> path). The scheduler calls the
action inside the transaction that moves the task back to ACTIVE, so the
action's outbox rows and the task's new state commit together; an action that
raises rolls both back and the task goes to ERROR. Actions build their outbox
dedupe keys from the task, interface and interval end, so a retried action
never publishes twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskRun:
    task_id: int
    task_name: str
    subtype: str
    interface_codes: tuple[str, ...]  # empty: the task has no interface (a BATCH_MONITOR scans all configs)
    interval_start: dt.datetime  # the task's last interval end (inclusive)
    interval_end: dt.datetime  # the tick's now (exclusive)
