"""Many scheduler tasks moved at once (DOMAIN §2): the state machine of ``services.task_move`` for a list of tasks.

A tick with hundreds of due tasks must not pay a statement and a commit per task
and per step. The rows are locked (with SKIP LOCKED when claiming, so that two
tickers split the due tasks instead of queueing on each other's rows), each is
compared with the state and values the caller saw, and those still unchanged are
written with one UPDATE per set of fields and their transitions with one INSERT,
in the caller's transaction. The fields and notes come from the same
``SchedulerTask`` methods as a single move, so both paths record the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from portal import clock, roles
from portal.alerts.services import alert_rules_read_once
from portal.lib.bulk import rows_insert, rows_update
from scheduling.scheduler.alerts import task_error_alert_follow
from scheduling.scheduler.models import SchedulerTask, TaskTransition


@dataclass
class Move:
    """One transition wanted: ``task`` as the caller saw it, to ``to_state``, writing ``fields``."""

    task: SchedulerTask
    to_state: str
    event: str
    fields: Mapping[str, object]
    note: str
    expect: Mapping[str, object] = field(default_factory=dict)  # what the row must still hold besides its state
    actor: object = None


def _holds(row: dict | None, move: Move) -> bool:
    if row is None or row["state"] != move.task.state:
        return False
    return all(row[name] == value for name, value in move.expect.items())


def tasks_move(*, moves: list[Move], skip_locked: bool = False) -> list[Move]:
    """Make the moves whose task is still as the caller saw it; return those made (the others lost a race).

    Call inside a transaction: the rows stay locked until it ends. With
    ``skip_locked`` a row another transaction holds counts as changed.
    """
    if not moves:
        return []
    expected = {name for move in moves for name in move.expect}
    rows = SchedulerTask.objects.select_for_update(skip_locked=skip_locked).filter(id__in=[m.task.id for m in moves])
    current = {row["id"]: row for row in rows.values("id", "state", *expected)}
    made = [move for move in moves if _holds(current.get(move.task.id), move)]
    now = clock.now()
    by_fields: dict[tuple[str, ...], list[SchedulerTask]] = defaultdict(list)
    transitions, was_failing = [], []
    for move in made:
        task = move.task
        transitions.append(
            TaskTransition(
                task=task, from_state=task.state, to_state=move.to_state, event=move.event, at=now,
                actor=roles.acting_user(move.actor), actor_name=roles.actor_label(move.actor), note=move.note,
            )
        )
        was_failing.append(task.is_failing)
        for name, value in move.fields.items():
            setattr(task, name, value)
        task.state, task.updated_at = move.to_state, now
        by_fields[tuple(sorted(move.fields))].append(task)
    for names, tasks in by_fields.items():
        rows_update(tasks, ["state", "updated_at", *names])
    rows_insert(transitions)
    with alert_rules_read_once():
        for move, failing in zip(made, was_failing, strict=True):
            task_error_alert_follow(move.task, was_failing=failing)
    return made
