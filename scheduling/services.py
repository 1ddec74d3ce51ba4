"""Scheduler tasks, calendar groups and the heartbeat (DOMAIN §2 and §4).

Every change of a task's state is a compare-and-set (``UPDATE ... WHERE id = %s
AND state = <old>``) recorded as a TaskTransition in the same transaction, so
two ticks, two clusters or a tick racing an operator never act twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import holidays as holiday_calendars
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection, transaction
from django.db.models import F, QuerySet

from monitoring.models import MonitoredInterface
from portal import clock, roles
from portal.lib.loop import StopSignal
from portal.lib.taskrun import TaskRun
from portal.models import Heartbeat
from portal.services import audit_record, outbox_enqueue
from scheduling.actions import action_for
from scheduling.business_time import HORIZON_DAYS
from scheduling.job_services import (  # noqa: F401  (workflow jobs, DOMAIN §3)
    InvalidInput,
    JobConflict,
    LoadReport,
    ReloadReport,
    SpoolCommandReport,
    dispatcher_cycle,
    dispatcher_sweep,
    generations_finalize,
    job_add,
    job_attempt_finish,
    job_comment,
    job_disable,
    job_enable,
    job_pause,
    job_reset,
    job_run,
    job_schedule,
    job_start,
    jobs_dispatch,
    jobs_mark_zombies,
    scheduler_resume,
    scheduler_shutdown,
    spool_jobs_command,
    spool_set_enabled,
    workflow_load,
    workflows_reload,
)
from scheduling.models import (
    CalendarEntry,
    CalendarGroup,
    ScheduleEntry,
    SchedulerTask,
    TaskEvent,
    TaskState,
    TaskTransition,
)
from scheduling.selectors import group_prefetches, tasks_due

log = logging.getLogger(__name__)

HEARTBEAT_GAP = "HEARTBEAT_GAP"
NO_CLAIM = {"claim_token": None, "claimed_at": None, "claim_expires_at": None}
NO_SUSPENSION = {"suspended_reason": "", "suspended_by": None, "suspended_at": None, "resume_at": None}


def iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else "-"


class TransitionRefused(Exception):
    """An operator command the task's current state does not allow."""

    def __init__(self, task: SchedulerTask, command: str) -> None:
        self.state = task.state
        super().__init__(f"cannot {command} task {task.name}: it is {task.state}")


def _require(actor, allowed, what: str) -> None:
    """People need the role; the system itself (a command, a tick) is trusted."""
    if getattr(actor, "is_authenticated", False) and not allowed(actor):
        raise PermissionDenied(f"{what} needs the {'Administrator' if allowed is roles.can_administer else 'Operator'} role")


def _actor_name(actor) -> tuple[object, str]:
    if getattr(actor, "is_authenticated", False):
        return actor, actor.get_username()
    return None, actor if isinstance(actor, str) else "system"


# --- the state machine ------------------------------------------------------------


def transition_record(
    *, task: SchedulerTask, from_state: str, to_state: str, event: str, actor=None, note: str = ""
) -> TaskTransition:
    user, name = _actor_name(actor)
    return TaskTransition.objects.create(
        task=task, from_state=from_state, to_state=to_state, event=event, at=clock.now(), actor=user, actor_name=name, note=note
    )


def _move(task: SchedulerTask, *, to_state: str, event: str, actor=None, note: str = "", expect: Mapping | None = None, **fields) -> bool:
    """Compare-and-set the task from its known state (and ``expect``ed values) to ``to_state``.

    True when this caller made the change (and recorded it); False when someone
    else changed the task first. Call inside a transaction.
    """
    from_state = task.state
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
    return True


def _start_afresh(task: SchedulerTask, *, event: str, actor, note: str) -> bool:
    """To ACTIVE with a new first interval: [now, now + interval)."""
    now = clock.now()
    return _move(
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
    return _move(
        task, to_state=TaskState.DISABLED, event=TaskEvent.DISABLE, actor=actor, note=note,
        enabled=False, next_timeout_at=None, **NO_SUSPENSION, **NO_CLAIM,
    )


def _claim(task: SchedulerTask, *, now: dt.datetime, event: str, actor=None, note: str = "", expect: Mapping | None = None) -> uuid.UUID | None:
    """Take the task to PROCESSING for the interval [last interval end, now); None when another got it."""
    token = uuid.uuid4()
    start = task.interval_start()
    retry = f" (retry after {task.consecutive_failures} failure(s))" if task.state == TaskState.ERROR else ""
    with transaction.atomic():
        claimed = _move(
            task,
            to_state=TaskState.PROCESSING,
            event=event,
            actor=actor,
            note=note or f"action over [{iso(start)}, {iso(now)}){retry}",
            expect=expect,
            claim_token=token,
            claimed_at=now,
            claim_expires_at=now + dt.timedelta(seconds=settings.SCHEDULER_CLAIM_SECONDS),
            last_interval_end_at=start,
        )
    return token if claimed else None


def _error_text(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, LookupError) else f"{type(exc).__name__}: {exc}"
    return text[:4000]


def _to_error(task: SchedulerTask, *, event: str, error: str, expect: Mapping, actor=None) -> bool:
    """ERROR with the error kept and the next retry after a backoff that grows with each failure."""
    now = clock.now()
    failures = task.consecutive_failures + 1
    retry_at = now + SchedulerTask.retry_delay(failures)
    return _move(
        task,
        to_state=TaskState.ERROR,
        event=event,
        actor=actor,
        note=f"{error} (failure {failures} in a row; retry at {iso(retry_at)})",
        expect=expect,
        consecutive_failures=failures,
        last_error=error,
        last_error_at=now,
        next_timeout_at=retry_at,
        **NO_CLAIM,
    )


class _ClaimLost(Exception):
    pass


def scheduler_task_run_claimed(*, task_id: int, token: uuid.UUID | str) -> str:
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
    start, end = task.interval_start(), task.claimed_at
    run = TaskRun(
        task_id=task.id,
        task_name=task.name,
        subtype=task.subtype,
        interface_codes=tuple(sorted(interface.code for interface in task.interfaces.all())),
        interval_start=start,
        interval_end=end,
    )
    try:
        with transaction.atomic():
            action_for(task.subtype)(run)
            done = _move(
                task,
                to_state=TaskState.ACTIVE,
                event=TaskEvent.ACTION_DONE,
                note=f"{task.subtype} over [{iso(start)}, {iso(end)})",
                expect={"claim_token": token},
                last_interval_end_at=end,
                last_fired_at=end,
                next_timeout_at=end + task.interval,
                consecutive_failures=0,
                last_error="",
                last_error_at=None,
                **NO_CLAIM,
            )
            if not done:
                raise _ClaimLost
    except _ClaimLost:
        log.warning("scheduler task %s: claim lost while its action ran; its result is rolled back", task.name)
        return "lost"
    except Exception as exc:
        log.exception("scheduler task %s: action failed", task.name)
        task.state = TaskState.PROCESSING  # whatever the rolled-back transaction set on the object
        with transaction.atomic():
            failed = _to_error(task, event=TaskEvent.ACTION_FAILED, error=_error_text(exc), expect={"claim_token": token})
        return "failed" if failed else "lost"
    return "done"


def scheduler_task_hand_off(*, task_id: int, token: uuid.UUID) -> None:
    """Give a claimed task to a django-q2 worker (the claim is committed already)."""
    from django_q.tasks import async_task

    async_task("scheduling.tasks.run_claimed_task", task_id, str(token), task_name=f"scheduler-task-{task_id}-{token}")


# --- operator commands --------------------------------------------------------------


def _operate(*, actor, task: SchedulerTask, command: str, reason: str, change) -> SchedulerTask:
    """One audited operator command: check the role and the state, change, record."""
    _require(actor, roles.can_operate, f"{command} of a scheduler task")
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
        change=lambda t: _start_afresh(t, event=TaskEvent.ENABLE, actor=actor, note=reason or "enabled"),
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
        raise ValidationError({"resume_at": f"the resume time {iso(resume_at)} must be later than now ({iso(now)})"})
    user, _ = _actor_name(actor)
    note = reason + (f" (resumes at {iso(resume_at)})" if resume_at else "")
    return _operate(
        actor=actor, task=task, command="suspend", reason=reason,
        change=lambda t: _move(
            t, to_state=TaskState.SUSPENDED, event=TaskEvent.SUSPEND, actor=actor, note=note,
            suspended_reason=reason, suspended_by=user, suspended_at=now, resume_at=resume_at, **NO_CLAIM,
        ),
    )


def _resume(task: SchedulerTask, *, actor, note: str, expect: Mapping | None = None) -> bool:
    # The timeout and the last interval end are kept: the next action covers the suspension.
    return _move(task, to_state=TaskState.ACTIVE, event=TaskEvent.RESUME, actor=actor, note=note, expect=expect, **NO_SUSPENSION)


def scheduler_task_resume(*, actor, task: SchedulerTask, reason: str = "") -> SchedulerTask:
    return _operate(
        actor=actor, task=task, command="resume", reason=reason,
        change=lambda t: _resume(t, actor=actor, note=reason or "resumed"),
    )


def scheduler_task_run_now(*, actor, task: SchedulerTask, reason: str = "", inline: bool = False) -> SchedulerTask:
    """Run the action now over [last interval end, now), whatever the timeout and the calendar."""
    claimed: list[uuid.UUID] = []

    def claim(t: SchedulerTask) -> bool:
        token = _claim(t, now=clock.now(), event=TaskEvent.RUN_NOW, actor=actor)
        claimed.extend([token] if token else [])
        return bool(token)

    task = _operate(actor=actor, task=task, command="run-now", reason=reason, change=claim)
    if inline:
        scheduler_task_run_claimed(task_id=task.id, token=claimed[0])
    else:
        scheduler_task_hand_off(task_id=task.id, token=claimed[0])
    task.refresh_from_db()
    return task


# --- the heartbeat --------------------------------------------------------------------


@dataclass
class TickReport:
    event: str
    at: dt.datetime
    gap_seconds: float | None = None
    started: int = 0
    expired: int = 0
    resumed: int = 0
    zombies: int = 0
    finalized: int = 0
    deferred: int = 0
    handed_off: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def __str__(self) -> str:
        parts = [f"{self.event} at {iso(self.at)}"]
        if self.gap_seconds is not None:
            parts.append(f"HEARTBEAT_GAP after {self.gap_seconds:.0f} s blind")
        figures = {
            "started": self.started, "claims expired": self.expired, "resumed": self.resumed,
            "jobs found Zombie": self.zombies, "generations finalized": self.finalized, "deferred to business time": self.deferred, "handed to workers": self.handed_off, **self.outcomes,
        }
        parts += [f"{name} {value}" for name, value in figures.items() if value]
        return ", ".join(parts) if len(parts) > 1 else parts[0] + ", nothing due"


def _gap_payload(*, last_tick_at: dt.datetime, now: dt.datetime, event: str) -> dict:
    seconds = round((now - last_tick_at).total_seconds())
    return {
        "uuid": str(uuid.uuid4()),
        "eventMessage": (
            f"the portal's heartbeat stopped for {dt.timedelta(seconds=seconds)} "
            f"(last tick {last_tick_at:%Y-%m-%d %H:%M:%S} UTC, resumed {now:%Y-%m-%d %H:%M:%S} UTC): "
            "no scheduler task ran meanwhile"
        ),
        "eventMajor": "HEARTBEAT",
        "eventMinor": HEARTBEAT_GAP,
        "exceptionFlag": "Y",
        "exceptionType": "System Error",
        "exceptionName": HEARTBEAT_GAP,
        "exceptionArgument": "",
        "entity": "portal",
        "version": "1",
        "eventTimeStamp": f"{now:%Y-%m-%d %H:%M:%S}",
        "heartbeat": {
            "last_tick_at": iso(last_tick_at),
            "resumed_at": iso(now),
            "blind_seconds": seconds,
            "interval_seconds": settings.HEARTBEAT_SECONDS,
            "event": event,
        },
    }


def heartbeat_beat(*, now: dt.datetime, event: str) -> float | None:
    """Record the tick; after a stale period, one HEARTBEAT_GAP message. Returns the gap in seconds."""
    with transaction.atomic():
        beat = Heartbeat.load()
        previous = beat.last_tick_at
        if previous is not None and previous >= now:
            return None  # another ticker was here first, or a replay behind the live clock
        changed = Heartbeat.objects.filter(id=beat.id, last_tick_at=previous).update(
            last_tick_at=now, last_event=event, ticks=F("ticks") + 1
        )
        if not changed or not beat.is_stale(now, settings.HEARTBEAT_SECONDS):
            return None
        outbox_enqueue(
            kind=HEARTBEAT_GAP,
            dedupe_key=f"{HEARTBEAT_GAP}:{iso(previous)}",
            payload=_gap_payload(last_tick_at=previous, now=now, event=event),
        )
        return (now - previous).total_seconds()


def _start_enabled_inactive(event: str) -> int:
    started = 0
    for task in SchedulerTask.objects.filter(state=TaskState.INACTIVE, enabled=True):
        with transaction.atomic():
            started += _start_afresh(task, event=event, actor=None, note="an enabled task started by the heartbeat")
    return started


def _expire_claims(now: dt.datetime, event: str) -> int:
    expired = 0
    for task in SchedulerTask.objects.claim_expired(now):
        error = (
            f"the action claimed at {iso(task.claimed_at)} had not finished by {iso(task.claim_expires_at)}: "
            "its worker was lost"
        )
        with transaction.atomic():
            expired += _to_error(task, event=event, error=error, expect={"claim_token": task.claim_token})
    return expired


def _resume_due(now: dt.datetime) -> int:
    resumed = 0
    for task in SchedulerTask.objects.resume_due(now):
        with transaction.atomic():
            resumed += _resume(task, actor=None, note=f"resume time {iso(task.resume_at)} reached", expect={"resume_at": task.resume_at})
    return resumed


def _tick_task(task: SchedulerTask, *, now: dt.datetime, event: str, inline: bool, report: TickReport) -> None:
    expect = {"next_timeout_at": task.next_timeout_at}
    if not task.is_open(now):
        later = task.next_open(now)
        with transaction.atomic():
            if later is None:
                groups = ", ".join(g.name for g in task.calendar_groups.all())
                error = f"no business time within {HORIZON_DAYS} days in calendar groups {groups}"
                report.count("failed" if _to_error(task, event=event, error=error, expect=expect) else "taken")
                return
            moved = _move(
                task, to_state=task.state, event=event, expect=expect, next_timeout_at=later,
                note=f"outside business time: next timeout moved to {iso(later)}",
            )
        report.deferred += moved
        return
    token = _claim(task, now=now, event=event, expect=expect)
    if token is None:
        report.count("taken")  # another tick or cluster claimed it first
    elif inline:
        report.count(scheduler_task_run_claimed(task_id=task.id, token=token))
    else:
        scheduler_task_hand_off(task_id=task.id, token=token)
        report.handed_off += 1


def heartbeat_tick(*, event: str = TaskEvent.HEARTBEAT, inline: bool = True) -> TickReport:
    """One tick: record it, recover, resume, and run (or hand to workers) every due task.

    With ``inline`` each due action runs here and is committed when this
    returns; otherwise claimed tasks go to django-q2 workers. One task's
    failure never stops the others.
    """
    now = clock.now()
    report = TickReport(event=event, at=now)
    previous_tick = Heartbeat.objects.filter(id=Heartbeat.SINGLETON_ID).values_list("last_tick_at", flat=True).first()
    report.gap_seconds = heartbeat_beat(now=now, event=event)
    if event == TaskEvent.HEARTBEAT_START:
        report.started = _start_enabled_inactive(event)
        # DOMAIN §4: the first tick after start-up also recovers jobs left Running by dead workers.
        report.zombies = jobs_mark_zombies()
    report.expired = _expire_claims(now, event)
    report.resumed = _resume_due(now)
    if previous_tick is None or previous_tick.replace(minute=0, second=0, microsecond=0) != now.replace(minute=0, second=0, microsecond=0):
        try:  # finalizeAfterDays (DOMAIN §3) is checked hourly: by the first tick of each hour
            report.finalized = generations_finalize()
        except Exception:
            log.exception("heartbeat: the finalize check failed; the tick goes on")
    for task in tasks_due(now):
        try:
            _tick_task(task, now=now, event=event, inline=inline, report=report)
        except Exception:
            log.exception("heartbeat: scheduler task %s could not be handled; the others go on", task.name)
            report.count("broken")
    return report


def heartbeat_loop(*, stop: StopSignal, interval_seconds: float | None = None) -> None:
    """The live heartbeat: E_HeartbeatStart, then E_Heartbeat every interval until stopped.

    Ticks keep to a fixed cadence (the actions run in workers, so a tick is
    short); a tick that fails (database away) is logged and the loop goes on.
    """
    interval = interval_seconds or settings.HEARTBEAT_SECONDS
    event = TaskEvent.HEARTBEAT_START
    deadline = time.monotonic()
    while not stop.stopped:
        if not connection.in_atomic_block:  # a long-lived process: drop connections the database timed out
            close_old_connections()
        try:
            log.info("heartbeat: %s", heartbeat_tick(event=event, inline=False))
            event = TaskEvent.HEARTBEAT
        except Exception:
            log.exception("heartbeat: tick failed; trying again at the next interval")
        deadline += interval
        if deadline < time.monotonic():
            deadline = time.monotonic()
        stop.wait(deadline - time.monotonic())


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
            log.info("scheduler task %s: calendar changed, next timeout %s -> %s", task.name, iso(task.next_timeout_at), iso(earliest))
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
    _require(actor, roles.can_administer, "creating a scheduler task")
    now = clock.now()
    task = SchedulerTask(name=name, subtype=subtype, interval_seconds=interval_seconds, enabled=False, created_at=now, updated_at=now)
    _check_task(task, interfaces)
    with transaction.atomic():
        task.save()
        task.interfaces.set(interfaces)
        task.calendar_groups.set(calendar_groups)
        if enabled:
            _start_afresh(task, event=TaskEvent.ENABLE, actor=actor, note="created enabled")
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
    _require(actor, roles.can_administer, "changing a scheduler task")
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
            _start_afresh(task, event=TaskEvent.ENABLE, actor=actor, note="enabled by a configuration change")
        elif enabled is False and task.enabled:
            _disable(task, actor=actor, note="disabled by a configuration change")
        audit_record(actor=actor, action="scheduler_task.update", obj=task, before=before, after=task.snapshot())
    return task


def scheduler_task_delete(*, actor, task: SchedulerTask) -> None:
    _require(actor, roles.can_administer, "deleting a scheduler task")
    with transaction.atomic():
        audit_record(actor=actor, action="scheduler_task.delete", obj=task, before=task.snapshot())
        task.delete()


# --- configuration: interfaces and calendar groups --------------------------------------------


def interface_save(*, actor, interface: MonitoredInterface) -> MonitoredInterface:
    """Create or change a monitored interface, validated and audited."""
    _require(actor, roles.can_administer, "changing an interface")
    fields = ["code", "name", "direction", "inbound_channel", "outbound_channel"]
    interface.full_clean()
    with transaction.atomic():
        old = MonitoredInterface.objects.filter(id=interface.id).values(*fields).first() if interface.id else None
        interface.save()
        audit_record(
            actor=actor,
            action="interface.update" if old else "interface.create",
            obj=interface,
            before=old,
            after={name: getattr(interface, name) for name in fields},
        )
    return interface


def _period_errors(schedule_entries: Sequence[Mapping]) -> list[str]:
    errors = []
    for number, entry in enumerate(schedule_entries, start=1):
        period = ScheduleEntry(type_code=entry.get("type_code", ""), open_time=entry.get("open_time"), close_time=entry.get("close_time"))
        try:
            period.full_clean(exclude=["group"])
        except ValidationError as exc:
            errors += [f"schedule entry {number}: {field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()]
    return errors


def _set_entries(group: CalendarGroup, entries: Sequence[Mapping]) -> None:
    """Make the active entries exactly ``entries``; dropped ones are soft-deleted, not removed."""
    wanted = {entry["date"]: entry.get("description", "") for entry in entries}
    if len(wanted) != len(entries):
        raise ValidationError({"entries": "a date is listed twice"})
    now = clock.now()
    for entry in group.entries.filter(deleted=False):
        if entry.date not in wanted:
            entry.deleted, entry.deleted_at = True, now
            entry.save(update_fields=["deleted", "deleted_at"])
        else:
            description = wanted.pop(entry.date)
            if entry.description != description:
                entry.description = description
                entry.save(update_fields=["description"])
    for date, description in wanted.items():
        revived = group.entries.filter(date=date, deleted=True).order_by("-id").first()
        if revived is not None:
            revived.deleted, revived.deleted_at, revived.description = False, None, description
            revived.save(update_fields=["deleted", "deleted_at", "description"])
        else:
            CalendarEntry.objects.create(group=group, date=date, description=description)


def _set_schedule(group: CalendarGroup, schedule_entries: Sequence[Mapping]) -> None:
    group.schedule_entries.all().delete()
    ScheduleEntry.objects.bulk_create(
        ScheduleEntry(group=group, type_code=e["type_code"], open_time=e["open_time"], close_time=e["close_time"])
        for e in schedule_entries
    )


def _check_group(group: CalendarGroup, schedule_entries: Sequence[Mapping] | None) -> None:
    errors: dict[str, list[str]] = {}
    try:
        group.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    period_errors = _period_errors(schedule_entries or [])
    if period_errors:
        errors["schedule_entries"] = period_errors
    if errors:
        raise ValidationError(errors)


def _fresh_group(group: CalendarGroup) -> CalendarGroup:
    return CalendarGroup.objects.prefetch_related("schedule_entries").get(id=group.id)


def calendar_group_create(
    *,
    actor,
    name: str,
    timezone: str = "UTC",
    weekend_days: Sequence[int] = (),
    entries: Sequence[Mapping] = (),
    schedule_entries: Sequence[Mapping] = (),
) -> CalendarGroup:
    """A calendar group with its non-business dates ({date, description}) and opening hours."""
    _require(actor, roles.can_administer, "creating a calendar group")
    now = clock.now()
    group = CalendarGroup(name=name, timezone=timezone, weekend_days=list(weekend_days), created_at=now, updated_at=now)
    _check_group(group, schedule_entries)
    with transaction.atomic():
        group.save()
        _set_entries(group, entries)
        _set_schedule(group, schedule_entries)
        group = _fresh_group(group)
        audit_record(actor=actor, action="calendar_group.create", obj=group, after=group.snapshot())
    return group


def calendar_group_update(
    *,
    actor,
    group: CalendarGroup,
    name: str | None = None,
    timezone: str | None = None,
    weekend_days: Sequence[int] | None = None,
    entries: Sequence[Mapping] | None = None,
    schedule_entries: Sequence[Mapping] | None = None,
) -> CalendarGroup:
    """Change a group (None: unchanged); ``entries`` and ``schedule_entries`` replace the lists."""
    _require(actor, roles.can_administer, "changing a calendar group")
    with transaction.atomic():
        group = _fresh_group(group)
        before = group.snapshot()
        group.name = name if name is not None else group.name
        group.timezone = timezone if timezone is not None else group.timezone
        group.weekend_days = list(weekend_days) if weekend_days is not None else group.weekend_days
        _check_group(group, schedule_entries)
        group.updated_at = clock.now()
        group.save()
        if entries is not None:
            _set_entries(group, entries)
        if schedule_entries is not None:
            _set_schedule(group, schedule_entries)
        group = _fresh_group(group)
        audit_record(actor=actor, action="calendar_group.update", obj=group, before=before, after=group.snapshot())
        scheduler_tasks_recheck_calendar(tasks=group.scheduler_tasks.all())
    return group


def calendar_group_delete(*, actor, group: CalendarGroup) -> None:
    _require(actor, roles.can_administer, "deleting a calendar group")
    with transaction.atomic():
        audit_record(actor=actor, action="calendar_group.delete", obj=group, before=_fresh_group(group).snapshot())
        task_ids = list(group.scheduler_tasks.values_list("id", flat=True))
        group.delete()
        scheduler_tasks_recheck_calendar(tasks=SchedulerTask.objects.filter(id__in=task_ids))


def calendar_group_audit_change(*, actor, group: CalendarGroup, before: dict | None) -> None:
    """Audit a group the admin saved with its inline entries (before: None for a new group)."""
    group = _fresh_group(group)
    audit_record(
        actor=actor,
        action="calendar_group.update" if before else "calendar_group.create",
        obj=group,
        before=before,
        after=group.snapshot(),
    )
    scheduler_tasks_recheck_calendar(tasks=group.scheduler_tasks.all())


def calendar_entry_save(*, actor, entry: CalendarEntry) -> CalendarEntry:
    """Create or change one non-business date (the entries' own admin page), validated and audited."""
    _require(actor, roles.can_administer, "changing a calendar entry")
    entry.full_clean()
    with transaction.atomic():
        old = CalendarEntry.objects.select_related("group").filter(id=entry.id).first() if entry.id else None
        entry.save()
        audit_record(
            actor=actor,
            action="calendar_entry.update" if old else "calendar_entry.create",
            obj=entry,
            before=old.snapshot() if old else None,
            after=entry.snapshot(),
        )
        scheduler_tasks_recheck_calendar(tasks=SchedulerTask.objects.filter(calendar_groups=entry.group_id))
    return entry


def calendar_entries_delete(*, actor, entries: QuerySet[CalendarEntry], reason: str = "") -> int:
    """Soft-delete entries: the date becomes a business day again; the row stays as history."""
    _require(actor, roles.can_administer, "deleting calendar entries")
    now = clock.now()
    count = 0
    groups: set[int] = set()
    with transaction.atomic():
        for entry in entries.filter(deleted=False).select_related("group"):
            entry.deleted, entry.deleted_at = True, now
            entry.save(update_fields=["deleted", "deleted_at"])
            audit_record(actor=actor, action="calendar_entry.delete", obj=entry, before={"deleted": False}, after={"deleted": True}, reason=reason)
            count += 1
            groups.add(entry.group_id)
        scheduler_tasks_recheck_calendar(tasks=SchedulerTask.objects.filter(calendar_groups__in=groups).distinct())
    return count


def calendar_entries_restore(*, actor, entries: QuerySet[CalendarEntry], reason: str = "") -> int:
    """Undo a soft delete, unless the date has an active entry again meanwhile."""
    _require(actor, roles.can_administer, "restoring calendar entries")
    count = 0
    with transaction.atomic():
        for entry in entries.filter(deleted=True).select_related("group"):
            if CalendarEntry.objects.filter(group=entry.group, date=entry.date, deleted=False).exists():
                continue
            entry.deleted, entry.deleted_at = False, None
            entry.save(update_fields=["deleted", "deleted_at"])
            audit_record(actor=actor, action="calendar_entry.restore", obj=entry, before={"deleted": True}, after={"deleted": False}, reason=reason)
            count += 1
    return count


# --- public and market holidays -----------------------------------------------------------------


@dataclass(frozen=True)
class HolidayImport:
    group: str
    code: str
    year: int
    created: list[str]
    kept: list[str]  # the date has an active entry already
    skipped_deleted: list[str]  # an operator deleted the date's entry: not brought back

    def __str__(self) -> str:
        return (
            f"{self.group}: {self.code} {self.year}: {len(self.created)} holiday(s) added, "
            f"{len(self.kept)} already there, {len(self.skipped_deleted)} left deleted"
        )


def holidays_lookup(code: str, year: int) -> dict[dt.date, str]:
    """Holidays of a market (NYSE, ECB, XETR...) or a country (DE, US, or DE-BY with a subdivision)."""
    code = code.strip().upper()
    if not 1900 <= year <= 2200:
        raise ValidationError({"year": f"{year} is out of range (1900-2200)"})
    try:
        if code in holiday_calendars.list_supported_financial():
            found = holiday_calendars.financial_holidays(code, years=year)
        else:
            country, _, subdivision = code.partition("-")
            if country not in holiday_calendars.list_supported_countries():
                raise ValidationError(
                    {"code": f"{code!r} is neither a country code (DE, US, DE-BY) nor a market code (NYSE, ECB, XETR)"}
                )
            found = holiday_calendars.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError as exc:
        raise ValidationError({"code": f"{code!r}: {exc}"}) from None
    return {day: name for day, name in sorted(found.items())}


def holidays_import(*, actor, group: CalendarGroup, code: str, year: int) -> HolidayImport:
    """Add the holidays of ``code`` in ``year`` as calendar entries of ``group`` (idempotent)."""
    _require(actor, roles.can_administer, "importing holidays")
    found = holidays_lookup(code, year)
    created, kept, skipped = [], [], []
    with transaction.atomic():
        rows = {}
        for entry in group.entries.filter(date__in=list(found)).order_by("deleted"):
            rows.setdefault(entry.date, entry)
        new = []
        for day, name in found.items():
            entry = rows.get(day)
            if entry is None:
                new.append(CalendarEntry(group=group, date=day, description=f"{name} ({code.strip().upper()})"[:200]))
                created.append(day.isoformat())
            elif entry.deleted:
                skipped.append(day.isoformat())
            else:
                kept.append(day.isoformat())
        CalendarEntry.objects.bulk_create(new)
        result = HolidayImport(group.name, code.strip().upper(), year, created, kept, skipped)
        audit_record(
            actor=actor,
            action="calendar_group.import_holidays",
            obj=group,
            after={"code": result.code, "year": year, "created": created, "kept": kept, "left_deleted": skipped},
        )
    return result


def holidays_import_many(*, actor, groups: Iterable[CalendarGroup], code: str, year: int) -> list[HolidayImport]:
    """The admin action over several groups: all or nothing."""
    with transaction.atomic():
        return [holidays_import(actor=actor, group=group, code=code, year=year) for group in groups]
