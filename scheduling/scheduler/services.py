"""Scheduler tasks, calendar groups and the heartbeat (DOMAIN §2 and §4).

Every change of a task's state is a compare-and-set (``UPDATE ... WHERE id = %s
AND state = <old>``) recorded as a TaskTransition in the same transaction, so
two ticks, two clusters or a tick racing an operator never act twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from monitoring.summaries.models import MonitoredInterface
from portal import clock, roles
from portal.lib.times import iso_utc
from portal.logs import log_scope
from portal.services import audit_record
from scheduling.scheduler.actions import action_for
from scheduling.scheduler.alerts import task_error_alert_follow
from scheduling.scheduler.models import (
    NO_CLAIM,
    CalendarGroup,
    SchedulerTask,
    TaskEvent,
    TaskState,
    TaskTransition,
)
from scheduling.scheduler.selectors import group_prefetches

log = logging.getLogger(__name__)

# The path django-q2 stores for a claimed task's run (scheduling.tasks serves rows queued before the split).
RUN_CLAIMED_TASK = "scheduling.scheduler.tasks.run_claimed_task"
NO_SUSPENSION = {"suspended_reason": "", "suspended_by": None, "suspended_at": None, "resume_at": None}


class TransitionRefused(Exception):
    """An operator command the task's current state does not allow."""

    def __init__(self, task: SchedulerTask, command: str) -> None:
        self.state = task.state
        super().__init__(f"cannot {command} task {task.name}: it is {task.state}")


# --- the state machine ------------------------------------------------------------


def transition_record(
    *, task: SchedulerTask, from_state: str, to_state: str, event: str, actor=None, note: str = ""
) -> TaskTransition:
    return TaskTransition.objects.create(
        task=task, from_state=from_state, to_state=to_state, event=event, at=clock.now(),
        actor=roles.acting_user(actor), actor_name=roles.actor_label(actor), note=note
    )


def task_move(task: SchedulerTask, *, to_state: str, event: str, actor=None, note: str = "", expect: Mapping | None = None, **fields) -> bool:
    """Compare-and-set the task from its known state (and ``expect``ed values) to ``to_state``.

    True when this caller made the change (and recorded it); False when someone
    else changed the task first. Call inside a transaction.
    """
    from_state, was_failing = task.state, task.is_failing
    now = clock.now()
    changed = SchedulerTask.objects.filter(id=task.id, state=from_state, **(expect or {})).update(
        state=to_state, updated_at=now, **fields
    )
    if not changed:
        return False
    for name, value in fields.items():
        setattr(task, name, value)
    task.state, task.updated_at = to_state, now
    transition_record(task=task, from_state=from_state, to_state=to_state, event=event, actor=actor, note=note)
    task_error_alert_follow(task, was_failing=was_failing)
    return True


def task_start_afresh(task: SchedulerTask, *, event: str, actor, note: str) -> bool:
    """To ACTIVE with a new first interval: [now, now + interval)."""
    now = clock.now()
    return task_move(
        task,
        to_state=TaskState.ACTIVE,
        event=event,
        actor=actor,
        note=note,
        enabled=True,
        last_interval_end_at=now,
        next_timeout_at=now + task.interval,
        consecutive_failures=0,
        last_error="",
        last_error_at=None,
        **NO_SUSPENSION,
        **NO_CLAIM,
    )


def _disable(task: SchedulerTask, *, actor, note: str) -> bool:
    # Clearing the claim makes a running action's result roll back: disable wins.
    return task_move(
        task, to_state=TaskState.DISABLED, event=TaskEvent.DISABLE, actor=actor, note=note,
        enabled=False, next_timeout_at=None, **NO_SUSPENSION, **NO_CLAIM,
    )


def task_claim(task: SchedulerTask, *, now: dt.datetime, event: str, actor=None, note: str = "", expect: Mapping | None = None) -> uuid.UUID | None:
    """Take the task to PROCESSING for the interval [last interval end, now); None when another got it."""
    token = uuid.uuid4()
    fields, claim_note = task.claim_change(now=now, token=token)
    with transaction.atomic():
        claimed = task_move(task, to_state=TaskState.PROCESSING, event=event, actor=actor, note=note or claim_note, expect=expect, **fields)
    return token if claimed else None


def action_error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, LookupError) else f"{type(exc).__name__}: {exc}"
    return text[:4000]


def task_to_error(task: SchedulerTask, *, event: str, error: str, expect: Mapping, actor=None, retry_at: dt.datetime | None = None) -> bool:
    """ERROR with the error kept and the next retry after a backoff that grows with each failure (or at ``retry_at``)."""
    fields, note = task.error_change(now=clock.now(), error=error, retry_at=retry_at)
    return task_move(task, to_state=TaskState.ERROR, event=event, actor=actor, note=note, expect=expect, **fields)


class _ClaimLost(Exception):
    pass


def scheduler_task_run_claimed(*, task_id: int, token: uuid.UUID | str) -> str:
    """Run the action of a task this caller claimed, its log lines naming the task (see _run_claimed)."""
    with log_scope(task=task_id):
        return _run_claimed(task_id, token)


def _run_claimed(task_id: int, token: uuid.UUID | str) -> str:
    """Run the action of a task this caller claimed, then back to ACTIVE, or to ERROR.

    The action runs inside the transaction that moves the task back to ACTIVE:
    its outbox rows and the task's new state commit together, or neither does.
    Returns "done", "failed" or "lost" (the claim was taken away meanwhile:
    disabled, suspended or expired; nothing is kept).
    """
    token = uuid.UUID(str(token))
    task = SchedulerTask.objects.filter(id=task_id, state=TaskState.PROCESSING, claim_token=token).prefetch_related("interfaces").first()
    if task is None:
        log.info("scheduler task %s: claim %s no longer holds; nothing to run", task_id, token)
        return "lost"
    try:
        with transaction.atomic():
            action_for(task.subtype)(task.task_run())
            fields, note = task.done_change()
            done = task_move(task, to_state=TaskState.ACTIVE, event=TaskEvent.ACTION_DONE, note=note, expect={"claim_token": token}, **fields)
            if not done:
                raise _ClaimLost
    except _ClaimLost:
        log.warning("scheduler task %s: claim lost while its action ran; its result is rolled back", task.name)
        return "lost"
    except Exception as exc:
        log.exception("scheduler task %s: action failed", task.name)
        task.state = TaskState.PROCESSING  # whatever the rolled-back transaction set on the object
        with transaction.atomic():
            failed = task_to_error(task, event=TaskEvent.ACTION_FAILED, error=action_error_text(exc), expect={"claim_token": token})
        return "failed" if failed else "lost"
    return "done"


def scheduler_task_hand_off(*, task_id: int, token: uuid.UUID) -> None:
    """Give a claimed task to a django-q2 worker (the claim is committed already)."""
    from django_q.tasks import async_task

    # Stopped by django-q2 before its claim expires: a claim that expires means a lost task or worker.
    async_task(
        RUN_CLAIMED_TASK, task_id, str(token), task_name=f"scheduler-task-{task_id}-{token}", timeout=settings.SCHEDULER_ACTION_TIMEOUT_SECONDS
    )


# --- operator commands --------------------------------------------------------------


def _operate(*, actor, task: SchedulerTask, command: str, reason: str, change) -> SchedulerTask:
    """One audited operator command: check the role and the state, change, record."""
    roles.require(actor, roles.OPERATORS, f"{command} of a scheduler task")
    with transaction.atomic():
        task = SchedulerTask.objects.get(id=task.id)
        if not task.may(command):
            raise TransitionRefused(task, command)
        before = task.snapshot()
        if not change(task):
            raise TransitionRefused(SchedulerTask.objects.get(id=task.id), command)
        audit_record(actor=actor, action=f"scheduler_task.{command}", obj=task, before=before, after=task.snapshot(), reason=reason)
    return task


def scheduler_task_enable(*, actor, task: SchedulerTask, reason: str = "") -> SchedulerTask:
    """INACTIVE or DISABLED -> ACTIVE, starting afresh: next timeout now + interval."""
    return _operate(
        actor=actor, task=task, command="enable", reason=reason,
        change=lambda t: task_start_afresh(t, event=TaskEvent.ENABLE, actor=actor, note=reason or "enabled"),
    )


def scheduler_task_disable(*, actor, task: SchedulerTask, reason: str = "") -> SchedulerTask:
    return _operate(
        actor=actor, task=task, command="disable", reason=reason,
        change=lambda t: _disable(t, actor=actor, note=reason or "disabled"),
    )


def scheduler_task_suspend(*, actor, task: SchedulerTask, reason: str, resume_at: dt.datetime | None = None) -> SchedulerTask:
    """SUSPENDED with who and why; with ``resume_at`` the heartbeat resumes it then."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "a suspension needs a reason"})
    now = clock.now()
    if resume_at is not None and resume_at <= now:
        raise ValidationError({"resume_at": f"the resume time {iso_utc(resume_at)} must be later than now ({iso_utc(now)})"})
    note = reason + (f" (resumes at {iso_utc(resume_at)})" if resume_at else "")
    return _operate(
        actor=actor, task=task, command="suspend", reason=reason,
        change=lambda t: task_move(
            t, to_state=TaskState.SUSPENDED, event=TaskEvent.SUSPEND, actor=actor, note=note,
            suspended_reason=reason, suspended_by=roles.acting_user(actor), suspended_at=now, resume_at=resume_at, **NO_CLAIM,
        ),
    )


def task_resume(task: SchedulerTask, *, actor, note: str, expect: Mapping | None = None) -> bool:
    # The timeout and the last interval end are kept: the next action covers the suspension.
    return task_move(task, to_state=TaskState.ACTIVE, event=TaskEvent.RESUME, actor=actor, note=note, expect=expect, **NO_SUSPENSION)


def scheduler_task_resume(*, actor, task: SchedulerTask, reason: str = "") -> SchedulerTask:
    return _operate(
        actor=actor, task=task, command="resume", reason=reason,
        change=lambda t: task_resume(t, actor=actor, note=reason or "resumed"),
    )


def scheduler_task_run_now(*, actor, task: SchedulerTask, reason: str = "", inline: bool = False) -> SchedulerTask:
    """Run the action now over [last interval end, now), whatever the timeout and the calendar."""
    claimed: list[uuid.UUID] = []

    def claim(t: SchedulerTask) -> bool:
        token = task_claim(t, now=clock.now(), event=TaskEvent.RUN_NOW, actor=actor)
        claimed.extend([token] if token else [])
        return bool(token)

    task = _operate(actor=actor, task=task, command="run-now", reason=reason, change=claim)
    if inline:
        scheduler_task_run_claimed(task_id=task.id, token=claimed[0])
    else:
        scheduler_task_hand_off(task_id=task.id, token=claimed[0])
    task.refresh_from_db()
    return task


def scheduler_tasks_recheck_calendar(*, tasks: QuerySet[SchedulerTask]) -> int:
    """After a calendar change, bring back the timeouts a tick had moved past what is now business time.

    A tick outside business time moves a task's timeout to the next business
    instant of the calendar it saw then; when an operator removes a holiday,
    adds opening hours or takes a group off the task, that instant may come
    later than the task's first business instant under the new calendar. A
    timeout only ever moves earlier here (a closed day added later is found
    by the tick itself). Returns how many tasks moved.
    """
    now = clock.now()
    moved = 0
    candidates = tasks.filter(state__in=[TaskState.ACTIVE, TaskState.ERROR], next_timeout_at__gt=now).prefetch_related(
        "calendar_groups", *group_prefetches("calendar_groups__")
    )
    for task in candidates:
        natural = task.timeout_before_deferral()
        if natural is None or natural >= task.next_timeout_at:
            continue
        earliest = task.next_open(max(natural, now))
        if earliest is None or earliest >= task.next_timeout_at:
            continue
        changed = SchedulerTask.objects.filter(id=task.id, state=task.state, next_timeout_at=task.next_timeout_at).update(
            next_timeout_at=earliest, updated_at=now
        )
        if changed:
            log.info("scheduler task %s: calendar changed, next timeout %s -> %s", task.name, iso_utc(task.next_timeout_at), iso_utc(earliest))
        moved += changed
    return moved


# --- configuration: scheduler tasks -------------------------------------------------------


def _check_task(task: SchedulerTask, interfaces: Sequence[MonitoredInterface]) -> None:
    task.full_clean(exclude=["interfaces", "calendar_groups"])
    errors = SchedulerTask.interface_errors(task.subtype, interfaces)
    if errors:
        raise ValidationError({"interfaces": errors})


def scheduler_task_create(
    *,
    actor,
    name: str,
    subtype: str,
    interval_seconds: int,
    interfaces: Sequence[MonitoredInterface] = (),
    calendar_groups: Sequence[CalendarGroup] = (),
    enabled: bool = True,
) -> SchedulerTask:
    """A new task; created enabled, it is enabled at once (INACTIVE -> ACTIVE)."""
    roles.require(actor, roles.ADMINISTRATORS, "creating a scheduler task")
    now = clock.now()
    task = SchedulerTask(name=name, subtype=subtype, interval_seconds=interval_seconds, enabled=False, created_at=now, updated_at=now)
    _check_task(task, interfaces)
    with transaction.atomic():
        task.save()
        task.interfaces.set(interfaces)
        task.calendar_groups.set(calendar_groups)
        if enabled:
            task_start_afresh(task, event=TaskEvent.ENABLE, actor=actor, note="created enabled")
        audit_record(actor=actor, action="scheduler_task.create", obj=task, after=task.snapshot())
    return task


def scheduler_task_update(
    *,
    actor,
    task: SchedulerTask,
    name: str | None = None,
    subtype: str | None = None,
    interval_seconds: int | None = None,
    interfaces: Sequence[MonitoredInterface] | None = None,
    calendar_groups: Sequence[CalendarGroup] | None = None,
    enabled: bool | None = None,
) -> SchedulerTask:
    """Change a task's configuration (None: unchanged); turning ``enabled`` is an enable or a disable."""
    roles.require(actor, roles.ADMINISTRATORS, "changing a scheduler task")
    with transaction.atomic():
        task = SchedulerTask.objects.select_for_update().get(id=task.id)
        before = task.snapshot()
        old_interval = task.interval_seconds
        for attribute, value in (("name", name), ("subtype", subtype), ("interval_seconds", interval_seconds)):
            if value is not None:
                setattr(task, attribute, value)
        _check_task(task, interfaces if interfaces is not None else list(task.interfaces.all()))
        if task.interval_seconds != old_interval and task.state == TaskState.ACTIVE and task.last_interval_end_at:
            # A new interval counts from the last interval end, not from the old timeout.
            task.next_timeout_at = task.last_interval_end_at + task.interval
        task.updated_at = clock.now()
        task.save(update_fields=["name", "subtype", "interval_seconds", "next_timeout_at", "updated_at"])
        if interfaces is not None:
            task.interfaces.set(interfaces)
        if calendar_groups is not None:
            task.calendar_groups.set(calendar_groups)
            scheduler_tasks_recheck_calendar(tasks=SchedulerTask.objects.filter(id=task.id))
            task.refresh_from_db(fields=["next_timeout_at", "updated_at"])
        if enabled is True and not task.enabled:
            task_start_afresh(task, event=TaskEvent.ENABLE, actor=actor, note="enabled by a configuration change")
        elif enabled is False and task.enabled:
            _disable(task, actor=actor, note="disabled by a configuration change")
        audit_record(actor=actor, action="scheduler_task.update", obj=task, before=before, after=task.snapshot())
    return task


def scheduler_task_delete(*, actor, task: SchedulerTask) -> None:
    roles.require(actor, roles.ADMINISTRATORS, "deleting a scheduler task")
    with transaction.atomic():
        audit_record(actor=actor, action="scheduler_task.delete", obj=task, before=task.snapshot())
        task.delete()


