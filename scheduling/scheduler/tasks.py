"""django-q2 tasks of the scheduler: thin wrappers over services."""

from __future__ import annotations

from scheduling.scheduler.due import scheduler_tasks_run_claimed
from scheduling.scheduler.heartbeat import heartbeat_start_claim, heartbeat_tick
from scheduling.scheduler.models import TaskEvent
from scheduling.scheduler.services import scheduler_task_run_claimed

# Whether this worker process has ticked already (then its ticks are E_Heartbeat without asking).
_started = False


def heartbeat() -> str:
    """The schedule's tick, a safety net beside the `clock` loop: claims are shared, so never twice.

    Its first tick in a worker is E_HeartbeatStart only when no tick was one since the portal's
    processes started (``heartbeat_start_claim``): a worker started or recycled by django-q2 is no
    start of the portal.
    """
    global _started
    event = TaskEvent.HEARTBEAT if _started or not heartbeat_start_claim() else TaskEvent.HEARTBEAT_START
    report = heartbeat_tick(event=event, inline=False)
    _started = True
    return str(report)


def run_claimed_task(task_id: int, token: str) -> str:
    return scheduler_task_run_claimed(task_id=task_id, token=token)


def run_claimed_tasks(claims: list[list]) -> str:
    """A chunk of tasks claimed by one tick: ``[[task id, token], ...]``."""
    outcomes = scheduler_tasks_run_claimed(claims=[(task_id, token) for task_id, token in claims])
    return ", ".join(f"{outcome} {count}" for outcome, count in sorted(outcomes.items()))
