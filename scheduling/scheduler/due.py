"""A heartbeat tick with many due tasks (DOMAIN §2): claim them all at once, run their actions a chunk at a time.

The rules are those of the one-task path (``heartbeat._tick_task`` and
``services.scheduler_task_run_claimed``): the same moves, notes and outcomes.
What changes is the number of statements and commits: one transaction claims,
defers or fails every due task; then each chunk of claimed tasks runs in one
transaction, its actions' writes and the tasks' moves back to ACTIVE committed
together. A failing action must roll back its own writes only: when one fails,
the chunk's writes are undone and the chunk runs again with each action in a
savepoint of its own (the failed one is not run again; its task goes to ERROR).
Actions are written to be run again (their dedupe keys come from the task and
the interval), and a run rolled back left nothing behind.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from portal import clock
from portal.logs import log_scope
from scheduling.scheduler.actions import action_for
from scheduling.scheduler.models import SchedulerTask, TaskEvent, TaskState
from scheduling.scheduler.moves import Move, tasks_move
from scheduling.scheduler.services import action_error_text

log = logging.getLogger(__name__)

# The stored django-q2 path of a chunk of claimed tasks handed to a worker.
RUN_CLAIMED_TASKS = "scheduling.scheduler.tasks.run_claimed_tasks"
# Claimed tasks whose actions run in one transaction: their rows stay locked that long.
RUN_CHUNK = 100

Claim = tuple[int, uuid.UUID]


@dataclass
class DueClaims:
    """What the bulk claim did: the claims to run, and the tasks deferred, failed or taken by another ticker."""

    claims: list[Claim] = field(default_factory=list)
    tasks: dict[int, SchedulerTask] = field(default_factory=dict)  # the claimed tasks, as the claim left them
    deferred: int = 0
    outcomes: Counter = field(default_factory=Counter)


def _due_move(task: SchedulerTask, *, event: str) -> Move:
    now = clock.now()
    expect = {"next_timeout_at": task.next_timeout_at}
    if task.is_open(now):
        fields, note = task.claim_change(now=now, token=uuid.uuid4())
        return Move(task, TaskState.PROCESSING, event, fields, note, expect)
    later, note = task.deferral(now)
    if later is None:
        fields, note = task.error_change(now=now, error=note)
        return Move(task, TaskState.ERROR, event, fields, note, expect)
    return Move(task, task.state, event, {"next_timeout_at": later}, note, expect)


def scheduler_tasks_claim_due(*, tasks: Sequence[SchedulerTask], event: str) -> DueClaims:
    """Claim (or defer, or fail for want of business time) every due task in one transaction.

    Rows another ticker holds or has changed are left to it ("taken").
    """
    moves = [_due_move(task, event=event) for task in tasks]
    with transaction.atomic():
        made = tasks_move(moves=moves, skip_locked=True)
    result = DueClaims()
    result.outcomes["taken"] = len(moves) - len(made)
    for move in made:
        if move.to_state == TaskState.PROCESSING:
            result.claims.append((move.task.id, move.fields["claim_token"]))
            result.tasks[move.task.id] = move.task
        elif move.to_state == TaskState.ERROR:
            result.outcomes["failed"] += 1
        else:
            result.deferred += 1
    return result


def scheduler_tasks_run_claimed(*, claims: Sequence[Claim], tasks: Mapping[int, SchedulerTask] | None = None) -> Counter:
    """Run the actions of tasks this caller claimed, a chunk per transaction; outcomes "done", "failed", "lost".

    ``tasks``: the claimed tasks with their interfaces, when the caller has them (the tick that claimed them).
    """
    outcomes: Counter = Counter()
    for start in range(0, len(claims), RUN_CHUNK):
        chunk = {task_id: uuid.UUID(str(token)) for task_id, token in claims[start : start + RUN_CHUNK]}
        try:
            outcomes.update(_run_chunk(chunk, tasks))
        except Exception:  # their claims lapse and a later tick puts the tasks in ERROR, as with a lost worker
            log.exception("scheduler tasks %s: their chunk could not be run; the other chunks go on", sorted(chunk))
            outcomes["broken"] += len(chunk)
    return outcomes


def _run_chunk(tokens: dict[int, uuid.UUID], known: Mapping[int, SchedulerTask] | None) -> Counter:
    outcomes: Counter = Counter()
    with transaction.atomic():
        # Locked while the actions run: an operator's disable waits for the chunk, then applies.
        rows = SchedulerTask.objects.select_for_update().filter(id__in=list(tokens), state=TaskState.PROCESSING)
        held_ids = sorted(task_id for task_id, token in rows.values_list("id", "claim_token") if token == tokens[task_id])
        if known is None:
            held = list(SchedulerTask.objects.filter(id__in=held_ids).prefetch_related("interfaces").order_by("id"))
        else:
            held = [known[task_id] for task_id in held_ids]
        outcomes["lost"] = len(tokens) - len(held)
        errors: dict[int, str] = {}
        try:
            with transaction.atomic():  # the whole chunk in one savepoint: no round trip per action
                _run_actions(held, errors=errors, isolated=False)
        except _ActionFailed:
            # Every write of the chunk is undone: run it again, each action in a savepoint of its own.
            _run_actions(held, errors=errors, isolated=True)
        moves = []
        for task in held:
            expect = {"claim_token": task.claim_token}
            if task.id in errors:
                fields, note = task.error_change(now=clock.now(), error=errors[task.id])
                moves.append(Move(task, TaskState.ERROR, TaskEvent.ACTION_FAILED, fields, note, expect))
            else:
                fields, note = task.done_change()
                moves.append(Move(task, TaskState.ACTIVE, TaskEvent.ACTION_DONE, fields, note, expect))
        for move in tasks_move(moves=moves):
            outcomes["done" if move.to_state == TaskState.ACTIVE else "failed"] += 1
    return +outcomes


class _ActionFailed(Exception):
    """An action of a chunk run without savepoints failed: the chunk is rolled back and run again isolated."""


def _run_actions(tasks: list[SchedulerTask], *, errors: dict[int, str], isolated: bool) -> None:
    """Run each task's action, keeping the errors; an action that failed once is not run again."""
    for task in tasks:
        if task.id in errors:
            continue
        with log_scope(task=task.id):
            try:
                with transaction.atomic() if isolated else nullcontext():
                    action_for(task.subtype)(task.task_run())
            except Exception as exc:
                log.exception("scheduler task %s: action failed", task.name)
                errors[task.id] = action_error_text(exc)
                if not isolated:
                    raise _ActionFailed from exc


def scheduler_tasks_hand_off(*, claims: Sequence[Claim]) -> int:
    """Give claimed tasks to django-q2 workers in chunks, at least one per worker; returns the chunks queued."""
    from django_q.tasks import async_task

    if not claims:
        return 0
    size = min(RUN_CHUNK, math.ceil(len(claims) / settings.Q_CLUSTER["workers"]))
    chunks = [claims[start : start + size] for start in range(0, len(claims), size)]
    for chunk in chunks:
        pairs = [[task_id, str(token)] for task_id, token in chunk]
        async_task(RUN_CLAIMED_TASKS, pairs, task_name=f"scheduler-tasks-{chunk[0][0]}-{chunk[0][1]}")
    return len(chunks)
