"""The heartbeat (DOMAIN §4): E_HeartbeatStart then E_Heartbeat ticks that run every due scheduler task once."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q

from portal import clock
from portal.alerts.watch import alerts_on_tick, heartbeat_ping
from portal.lib.loop import StopSignal
from portal.lib.times import iso_utc
from portal.models import Heartbeat
from portal.services import outbox_enqueue
from scheduling.cutoffs.services import cutoffs_watch
from scheduling.scheduler.alerts import dispatcher_watch
from scheduling.scheduler.due import scheduler_tasks_claim_due, scheduler_tasks_hand_off, scheduler_tasks_run_claimed
from scheduling.scheduler.models import (
    SchedulerTask,
    TaskEvent,
    TaskState,
)
from scheduling.scheduler.selectors import tasks_due
from scheduling.scheduler.services import (
    scheduler_task_hand_off,
    scheduler_task_run_claimed,
    task_claim,
    task_move,
    task_resume,
    task_start_afresh,
    task_to_error,
)
from scheduling.workflows.dispatcher import (
    generations_finalize,
    jobs_mark_zombies,
)
from scheduling.workflows.models import SchedulerControl

log = logging.getLogger(__name__)

HEARTBEAT_GAP = "HEARTBEAT_GAP"


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
        parts = [f"{self.event} at {iso_utc(self.at)}"]
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
            "last_tick_at": iso_utc(last_tick_at),
            "resumed_at": iso_utc(now),
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
            dedupe_key=f"{HEARTBEAT_GAP}:{iso_utc(previous)}",
            payload=_gap_payload(last_tick_at=previous, now=now, event=event),
        )
        return (now - previous).total_seconds()


def process_started_at() -> dt.datetime:
    """When this portal process (or the one that started it, for django-q2's workers) started: wall clock."""
    from scheduling.apps import PROCESS_STARTED_AT

    raw = os.environ.get(PROCESS_STARTED_AT) or repr(time.time())
    os.environ.setdefault(PROCESS_STARTED_AT, raw)
    return dt.datetime.fromtimestamp(float(raw), tz=dt.UTC)


def heartbeat_start_claim(started_at: dt.datetime | None = None) -> bool:
    """Whether this process's first tick is E_HeartbeatStart: once per start of the portal's processes.

    The start time of the processes is recorded by a conditional update; a start within
    HEARTBEAT_SECONDS of the one recorded is the same start (the clock and the worker
    started together), and a django-q2 worker started or recycled later inherits its
    cluster's start time, so it never makes a second E_HeartbeatStart.
    """
    started_at = started_at or process_started_at()
    SchedulerControl.load()
    same_start = dt.timedelta(seconds=settings.HEARTBEAT_SECONDS)
    return bool(
        SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID)
        .filter(Q(heartbeat_started_at__isnull=True) | Q(heartbeat_started_at__lt=started_at - same_start))
        .update(heartbeat_started_at=started_at)
    )


def _start_enabled_inactive(event: str) -> int:
    started = 0
    for task in SchedulerTask.objects.filter(state=TaskState.INACTIVE, enabled=True):
        with transaction.atomic():
            started += task_start_afresh(task, event=event, actor=None, note="an enabled task started by the heartbeat")
    return started


def _expire_claims(now: dt.datetime, event: str) -> int:
    expired = 0
    for task in SchedulerTask.objects.claim_expired(now):
        error = (
            f"the action claimed at {iso_utc(task.claimed_at)} had not finished by {iso_utc(task.claim_expires_at)}: "
            "its worker was lost"
        )
        with transaction.atomic():
            # Due again at once (DOMAIN §5): a lost hand-over or a vanished worker is no reason to wait longer.
            expired += task_to_error(task, event=event, error=error, expect={"claim_token": task.claim_token}, retry_at=now)
    return expired


def _resume_due(now: dt.datetime) -> int:
    resumed = 0
    for task in SchedulerTask.objects.resume_due(now):
        with transaction.atomic():
            resumed += task_resume(task, actor=None, note=f"resume time {iso_utc(task.resume_at)} reached", expect={"resume_at": task.resume_at})
    return resumed


def _tick_task(task: SchedulerTask, *, now: dt.datetime, event: str, inline: bool, report: TickReport) -> None:
    expect = {"next_timeout_at": task.next_timeout_at}
    if not task.is_open(now):
        later, note = task.deferral(now)
        with transaction.atomic():
            if later is None:
                report.count("failed" if task_to_error(task, event=event, error=note, expect=expect) else "taken")
                return
            moved = task_move(task, to_state=task.state, event=event, expect=expect, next_timeout_at=later, note=note)
        report.deferred += moved
        return
    token = task_claim(task, now=now, event=event, expect=expect)
    if token is None:
        report.count("taken")  # another tick or cluster claimed it first
    elif inline:
        report.count(scheduler_task_run_claimed(task_id=task.id, token=token))
    else:
        try:
            scheduler_task_hand_off(task_id=task.id, token=token)
        except Exception as exc:  # noqa: BLE001  - whatever the broker raises, the claim must not stay
            # The broker refused it (Redis restarting): the claim goes, the task is due again at the next tick.
            log.warning("heartbeat: scheduler task %s could not be handed to a worker: %s", task.name, exc)
            task.state = TaskState.PROCESSING
            with transaction.atomic():
                task_to_error(task, event=event, error=f"not handed to a worker: {exc}"[:4000], expect={"claim_token": token}, retry_at=now)
            report.count("not handed off")
            return
        report.handed_off += 1


def _tick_many(due: list[SchedulerTask], *, event: str, inline: bool, report: TickReport) -> None:
    """Many due tasks: the same moves as _tick_task, claimed in one transaction and run a chunk per transaction."""
    try:
        claimed = scheduler_tasks_claim_due(tasks=due, event=event)
    except Exception:
        log.exception("heartbeat: %d due scheduler tasks could not be claimed; the next tick tries again", len(due))
        report.count("broken")
        return
    report.deferred += claimed.deferred
    outcomes = claimed.outcomes
    if inline:
        outcomes += scheduler_tasks_run_claimed(claims=claimed.claims, tasks=claimed.tasks)
    else:
        try:
            scheduler_tasks_hand_off(claims=claimed.claims)
            report.handed_off += len(claimed.claims)
        except Exception:  # the broker away: the claims lapse and a later tick retries the tasks
            log.exception("heartbeat: %d claimed scheduler tasks could not be handed to the workers", len(claimed.claims))
            outcomes["broken"] += len(claimed.claims)
    for outcome, count in (+outcomes).items():
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + count


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
    due = tasks_due(now)
    if len(due) >= settings.SCHEDULER_TICK_BULK_MIN:
        _tick_many(due, event=event, inline=inline, report=report)
    else:
        for task in due:
            try:
                _tick_task(task, now=now, event=event, inline=inline, report=report)
            except Exception:
                log.exception("heartbeat: scheduler task %s could not be handled; the others go on", task.name)
                report.count("broken")
    _watch(now)
    return report


def _watch(now: dt.datetime) -> None:
    """DOMAIN §7 and §8 on every tick: the cut-offs, repeats, escalations, the outbox and the dispatcher looked at; then the ping out."""
    for watch in (cutoffs_watch, alerts_on_tick, dispatcher_watch):
        try:
            watch(now=now)
        except Exception:
            log.exception("heartbeat: %s failed; the tick goes on", watch.__name__)
    heartbeat_ping()


def heartbeat_loop(*, stop: StopSignal, interval_seconds: float | None = None) -> None:
    """The live heartbeat: E_HeartbeatStart, then E_Heartbeat every interval until stopped.

    Ticks keep to a fixed cadence (the actions run in workers, so a tick is
    short); a tick that fails (database away) is logged and the loop goes on.
    """
    interval = interval_seconds or settings.HEARTBEAT_SECONDS
    event = None  # the first tick that reaches the database decides: E_HeartbeatStart once per portal start
    deadline = time.monotonic()
    while not stop.stopped:
        if not connection.in_atomic_block:  # a long-lived process: drop connections the database timed out
            close_old_connections()
        try:
            if event is None:
                event = TaskEvent.HEARTBEAT_START if heartbeat_start_claim() else TaskEvent.HEARTBEAT
            log.info("heartbeat: %s", heartbeat_tick(event=event, inline=False))
            event = TaskEvent.HEARTBEAT
        except Exception:
            log.exception("heartbeat: tick failed; trying again at the next interval")
            if not connection.in_atomic_block:
                connection.close()  # a connection the database outage broke: the next tick opens a new one
        deadline += interval
        if deadline < time.monotonic():
            deadline = time.monotonic()
        stop.wait(deadline - time.monotonic())


