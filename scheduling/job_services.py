"""Workflow jobs (DOMAIN §3): loading workflows, operator commands, the dispatcher and the worker.

Re-exported by ``scheduling/services.py``. Every operator command is one function
used by the CLI, the API, the admin and the web monitor alike: it checks the
actor's role, applies DOMAIN §3's precondition with a compare-and-set on the
job's status (refusing with JobConflict and the current status), and is audited.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, models, transaction
from django.db.models import F

from portal import clock, roles
from portal.lib.times import iso_utc
from portal.services import audit_record
from scheduling.command import CommandResult, run_command
from scheduling.job_models import (
    COMMAND_ALLOWED_FROM,
    Job,
    JobAttempt,
    JobOrigin,
    JobStatus,
    SchedulerControl,
    Spool,
    WorkflowVersion,
)
from scheduling.workflow import Step, Workflow, WorkflowError, checksum, parse_workflow, spool_name_is_valid

log = logging.getLogger(__name__)

S = JobStatus
RUN_TASK = "scheduling.job_tasks.run_job"


# --- errors the interfaces turn into answers -----------------------------------------


class JobConflict(Exception):
    """A command whose precondition fails: the API answers 409 with the job's current status."""

    def __init__(self, job: Job, command: str) -> None:
        self.job = job
        self.command = command
        self.status = job.status
        allowed = ", ".join(sorted(COMMAND_ALLOWED_FROM[command]))
        super().__init__(f"cannot {command} job {job.id}: it is {job.status} ({command} needs {allowed})")


class InvalidInput(ValueError):
    """Bad input naming its field: the API answers 400, nothing is written."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(message)


# --- actors and audit --------------------------------------------------------------------


def _require(actor, check: Callable[[object], bool], role: str, what: str) -> None:
    """A user must hold the role; a string actor is a trusted local process (the CLI, the system)."""
    if isinstance(actor, str):
        return
    if not check(actor):
        raise PermissionDenied(f"{what} needs the {role} role")


def _require_operator(actor, what: str) -> None:
    _require(actor, roles.can_operate, roles.OPERATOR, what)


def _require_administrator(actor, what: str) -> None:
    _require(actor, roles.can_administer, roles.ADMINISTRATOR, what)


AUDITED_JOB_FIELDS = ("status", "state", "attempt", "timestamp", "comment", "stop_flag")


def _job_snapshot(job: Job) -> dict:
    return {
        name: iso_utc(value) if isinstance(value, dt.datetime) else value
        for name in AUDITED_JOB_FIELDS
        for value in [getattr(job, name)]
    }


# --- loading workflow files ----------------------------------------------------------------


@dataclass
class LoadReport:
    spool: Spool
    version: WorkflowVersion
    created_spool: bool
    changed: bool

    def __str__(self) -> str:
        if not self.changed:
            return f"spool {self.spool.name}: workflow unchanged (v{self.version.number}, {self.version.checksum[:12]})"
        verb = "created with" if self.created_spool else "now uses"
        return f"spool {self.spool.name} {verb} workflow v{self.version.number} ({len(self.version.steps)} steps, {self.version.checksum[:12]})"


def workflow_path(name: str) -> Path:
    """Workflow files and their commands are relative to the project directory."""
    path = Path(name)
    return path if path.is_absolute() else Path(settings.WORKFLOW_BASE_DIR) / path


def workflow_load(*, spool_name: str, path: str, actor, reason: str = "") -> LoadReport:
    """Load (or reload) a spool's workflow file; a new spool name creates the spool.

    A bad file raises WorkflowError naming each section, key and value, and the
    workflow in force stays. Loading the same text again keeps the version.
    """
    _require_administrator(actor, "loading a workflow")
    if not spool_name_is_valid(spool_name):
        raise InvalidInput("spool", f"spool name {spool_name!r}: use letters, digits, '.', '_' and '-' only, not '.' or '-' first")
    try:
        raw = workflow_path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput("file", f"workflow file {path!r} cannot be read: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Files written on older systems carry Latin-1 comments; they must load as they are.
        text = raw.decode("latin-1")
    workflow = parse_workflow(text, source=path)
    digest = checksum(text)
    with transaction.atomic():
        spool, created = Spool.objects.select_for_update().get_or_create(name=spool_name, defaults={"workflow_file": path})
        current = spool.workflow
        if current is not None and current.checksum == digest and spool.workflow_file == path:
            return LoadReport(spool, current, created_spool=False, changed=False)
        number = (spool.workflow_versions.aggregate(m=models.Max("number"))["m"] or 0) + 1
        version = WorkflowVersion.objects.create(
            spool=spool,
            number=number,
            source=path,
            text=text,
            checksum=digest,
            steps=workflow.as_json(),
            loaded_at=clock.now(),
            loaded_by=_actor_name(actor),
        )
        before = {"workflow_file": spool.workflow_file, "version": current.number, "checksum": current.checksum} if current else None
        spool.workflow = version
        spool.workflow_file = path
        spool.save(update_fields=["workflow", "workflow_file"])
        audit_record(
            actor=actor,
            action="workflow.load",
            obj=spool,
            before=before,
            after={"workflow_file": path, "version": number, "checksum": digest},
            reason=reason,
        )
    return LoadReport(spool, version, created_spool=created, changed=True)


@dataclass
class ReloadReport:
    loaded: list[LoadReport] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (spool, why)

    def lines(self) -> list[str]:
        return [str(report) for report in self.loaded] + [f"spool {name}: {why}" for name, why in self.refused]


def workflows_reload(*, actor, spools: Iterable[Spool] | None = None, reason: str = "") -> ReloadReport:
    """Read every spool's workflow file again; a refused file leaves that spool's workflow in force."""
    _require_administrator(actor, "reloading workflows")
    report = ReloadReport()
    chosen = list(spools if spools is not None else Spool.objects.select_related("workflow").order_by("name"))
    before = {spool.name: spool.workflow.number if spool.workflow else None for spool in chosen}
    for spool in chosen:
        try:
            report.loaded.append(workflow_load(spool_name=spool.name, path=spool.workflow_file, actor=actor, reason=reason))
        except (WorkflowError, InvalidInput) as exc:
            report.refused.append((spool.name, str(exc)))
    # The reload itself is an administrator's action, audited even when no file changed
    # (workflow_load audits each new version on its own).
    single = chosen[0] if spools is not None and len(chosen) == 1 else None
    audit_record(
        actor=actor,
        action="workflows.reload",
        obj=single,
        object_type="scheduling.Spool",
        object_id="" if single else "all",
        before={"versions": before},
        after={
            "versions": {**before, **{r.spool.name: r.version.number for r in report.loaded}},
            "changed": [r.spool.name for r in report.loaded if r.changed],
            "refused": {name: why for name, why in report.refused},
        },
        reason=reason,
    )
    return report


def spool_set_enabled(*, spool: Spool, enabled: bool, actor, reason: str = "") -> Spool:
    """A disabled spool keeps its jobs but none of them is started."""
    _require_administrator(actor, "enabling or disabling a spool")
    with transaction.atomic():
        changed = Spool.objects.filter(id=spool.id, enabled=not enabled).update(enabled=enabled)
        spool.enabled = enabled
        if changed:
            audit_record(
                actor=actor,
                action="spool.enable" if enabled else "spool.disable",
                obj=spool,
                before={"enabled": not enabled},
                after={"enabled": enabled},
                reason=reason,
            )
    return spool


# --- jobs: creation and operator commands ---------------------------------------------------


def _actor_name(actor) -> str:
    if isinstance(actor, str):
        return actor
    return actor.get_username() if getattr(actor, "is_authenticated", False) else "system"


def _next_generation(spool_id: int) -> int:
    """Numbered 1, 2, ... per spool; the row lock of the update serialises concurrent callers."""
    Spool.objects.filter(id=spool_id).update(last_generation=F("last_generation") + 1)
    return Spool.objects.filter(id=spool_id).values_list("last_generation", flat=True).get()


def _job_create(*, spool: Spool, step: Step, status: str, timestamp: dt.datetime, origin: str, generation: int | None = None) -> Job:
    now = clock.now()
    return Job.objects.create(
        spool=spool,
        generation=generation if generation is not None else _next_generation(spool.id),
        state=step.number,
        attempt=1,
        type=step.label,
        status=status,
        timestamp=timestamp,
        origin=origin,
        created_at=now,
        updated_at=now,
    )


def _spool_named(spool: Spool | str) -> Spool:
    if isinstance(spool, Spool):
        return spool
    found = Spool.objects.select_related("workflow").filter(name=spool).first()
    if found is None:
        raise InvalidInput("spool", f"no spool named {spool!r}")
    return found


def job_add(*, spool: Spool | str, state: int, actor, at: dt.datetime | None = None, reason: str = "") -> Job:
    """A new job for the spool's next generation at that step: Pause, attempt 1, at the time or now."""
    _require_operator(actor, "adding a job")
    spool = _spool_named(spool)
    step = spool.workflow.workflow.step(state) if spool.workflow else None
    if step is None:
        raise InvalidInput("state", f"spool {spool.name} has no step {state} in its workflow")
    with transaction.atomic():
        job = _job_create(spool=spool, step=step, status=S.PAUSE, timestamp=at or clock.now(), origin=JobOrigin.ADD)
        audit_record(actor=actor, action="job.add", obj=job, before=None, after=_job_snapshot(job), reason=reason)
    return job


def _job_command(*, job: Job | int, command: str, actor, reason: str, changes: Callable[[Job], dict]) -> Job:
    """Apply one command with a compare-and-set on the status read; refuse with the current status."""
    _require_operator(actor, f"the {command} command")
    job_id = job.id if isinstance(job, Job) else job
    for _ in range(3):  # the status may move between the read and the write (a worker finished): read again
        with transaction.atomic():
            current = Job.objects.select_related("spool").get(id=job_id)
            if not current.allows(command):
                raise JobConflict(current, command)
            fields = changes(current) | {"updated_at": clock.now()}
            if Job.objects.filter(id=job_id, status=current.status).update(**fields) != 1:
                continue
            before = _job_snapshot(current)
            for name, value in fields.items():
                setattr(current, name, value)
            audit_record(actor=actor, action=f"job.{command}", obj=current, before=before, after=_job_snapshot(current), reason=reason)
            return current
    current = Job.objects.get(id=job_id)
    raise JobConflict(current, command)


def job_start(*, job: Job | int, actor, named: bool = True, reason: str = "") -> Job:
    """Waiting now, stop flag cleared; started for one named generation it may also ignore mintime/maxtime once."""
    return _job_command(
        job=job,
        command="start",
        actor=actor,
        reason=reason,
        changes=lambda j: {"status": S.WAITING, "timestamp": clock.now(), "stop_flag": False, "ignore_time_window": named},
    )


def job_pause(*, job: Job | int, actor, reason: str = "") -> Job:
    """Waiting or Disabled: Pause. Running: the stop flag, so the attempt ends and the job pauses after it."""

    def changes(j: Job) -> dict:
        if j.pause_sets_stop_flag:
            return {"stop_flag": True}
        return {"status": S.PAUSE, "ignore_time_window": False}

    return _job_command(job=job, command="pause", actor=actor, reason=reason, changes=changes)


def job_reset(*, job: Job | int, actor, reason: str = "") -> Job:
    """Error or Zombie: the same step again from attempt 1, now."""
    return _job_command(
        job=job,
        command="reset",
        actor=actor,
        reason=reason,
        changes=lambda j: {"status": S.WAITING, "attempt": 1, "timestamp": clock.now(), "stop_flag": False, "worker": ""},
    )


def job_schedule(*, job: Job | int, timestamp: dt.datetime, actor, reason: str = "") -> Job:
    """A new due time; the status stays."""
    return _job_command(job=job, command="schedule", actor=actor, reason=reason, changes=lambda j: {"timestamp": timestamp})


def job_disable(*, job: Job | int, actor, reason: str = "") -> Job:
    return _job_command(
        job=job, command="disable", actor=actor, reason=reason, changes=lambda j: {"status": S.DISABLED, "ignore_time_window": False}
    )


def job_enable(*, job: Job | int, actor, reason: str = "") -> Job:
    """Disabled comes back as Pause: an operator starts it deliberately."""
    return _job_command(job=job, command="enable", actor=actor, reason=reason, changes=lambda j: {"status": S.PAUSE})


def job_comment(*, job: Job | int, comment: str, actor, reason: str = "") -> Job:
    return _job_command(job=job, command="comment", actor=actor, reason=reason, changes=lambda j: {"comment": comment})


SIMPLE_COMMANDS: dict[str, Callable[..., Job]] = {
    "start": job_start,
    "pause": job_pause,
    "reset": job_reset,
    "disable": job_disable,
    "enable": job_enable,
}


@dataclass
class SpoolCommandReport:
    command: str
    changed: list[Job] = field(default_factory=list)
    refused: list[JobConflict] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)  # the statuses of the jobs concerned, to say why none moved


def spool_jobs_command(*, command: str, spool: Spool | str, actor, generation: int | None = None, reason: str = "") -> SpoolCommandReport:
    """start|pause|reset|disable|enable for a spool's jobs, or for one named generation.

    For a whole spool the command applies to the jobs whose status allows it
    (pause pauses what can pause); a named generation's jobs must all allow it.
    """
    if command not in SIMPLE_COMMANDS:
        raise InvalidInput("command", f"unknown command {command!r}; one of {', '.join(SIMPLE_COMMANDS)}")
    spool = _spool_named(spool)
    jobs = Job.objects.filter(spool=spool).order_by("id")
    if generation is not None:
        jobs = jobs.filter(generation=generation)
        if not jobs.exists():
            raise InvalidInput("generation", f"spool {spool.name} has no generation {generation}")
    report = SpoolCommandReport(command)
    report.statuses.update(dict(jobs.order_by("status").values_list("status").annotate(n=models.Count("id"))))
    if generation is None:
        jobs = jobs.filter(status__in=COMMAND_ALLOWED_FROM[command])
    extra = {"named": generation is not None} if command == "start" else {}
    for job in list(jobs):
        try:
            report.changed.append(SIMPLE_COMMANDS[command](job=job, actor=actor, reason=reason, **extra))
        except JobConflict as exc:
            report.refused.append(exc)
    return report


# --- the scheduler switch --------------------------------------------------------------------


def _scheduler_switch(*, shut_down: bool, actor, reason: str) -> SchedulerControl:
    _require_administrator(actor, "shutting down or resuming the scheduler")
    SchedulerControl.load()
    now = clock.now()
    with transaction.atomic():
        changed = SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID, shut_down=not shut_down).update(
            shut_down=shut_down, changed_at=now, changed_by=_actor_name(actor), reason=reason
        )
        control = SchedulerControl.load()
        if changed:
            audit_record(
                actor=actor,
                action="scheduler.shutdown" if shut_down else "scheduler.resume",
                obj=control,
                before={"shut_down": not shut_down},
                after={"shut_down": shut_down},
                reason=reason,
            )
    return control


def scheduler_shutdown(*, actor, reason: str = "") -> SchedulerControl:
    """Stop dispatching (every process reads the flag); running jobs finish."""
    return _scheduler_switch(shut_down=True, actor=actor, reason=reason)


def scheduler_resume(*, actor, reason: str = "") -> SchedulerControl:
    return _scheduler_switch(shut_down=False, actor=actor, reason=reason)


# --- the dispatcher ----------------------------------------------------------------------------


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _local(now: dt.datetime) -> dt.datetime:
    return now.astimezone(zoneinfo.ZoneInfo(settings.PORTAL_TIME_ZONE))


@dataclass
class _Gates:
    """The (spool, step) pairs that may not start now, and why."""

    closed: list[tuple[int, int]] = field(default_factory=list)  # weekday, parallel limit: no exception
    outside_window: list[tuple[int, int]] = field(default_factory=list)  # mintime/maxtime: a named start may pass

    def exclude(self, jobs: models.QuerySet[Job]) -> models.QuerySet[Job]:
        for spool_id, state in self.closed:
            jobs = jobs.exclude(spool_id=spool_id, state=state)
        for spool_id, state in self.outside_window:
            jobs = jobs.exclude(spool_id=spool_id, state=state, ignore_time_window=False)
        return jobs


def _gates(spools: dict[int, Spool], local: dt.datetime, running: Counter) -> _Gates:
    gates = _Gates()
    for spool in spools.values():
        for step in spool.workflow.workflow.steps.values():
            pair = (spool.id, step.number)
            if not step.weekday_allows(local) or (step.parallel is not None and running[step.number] >= step.parallel):
                gates.closed.append(pair)
            elif not step.time_window_allows(local):
                gates.outside_window.append(pair)
    return gates


def _running_by_state() -> Counter:
    return Counter(dict(Job.objects.running().values_list("state").annotate(n=models.Count("id")).order_by()))


def _shut_down() -> bool:
    return SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID, shut_down=True).exists()


def _claim_due(*, limit: int, first_job_id: int | None = None, only_job_id: int | None = None) -> list[tuple[Job, uuid.UUID, Step]]:
    """Claim up to ``limit`` due jobs whose gates pass, oldest first (``first_job_id`` before the rest)."""
    now = clock.now()
    spools = {
        s.id: s
        for s in Spool.objects.filter(enabled=True, workflow__isnull=False).select_related("workflow").defer("workflow__text")
    }
    if not spools:
        return []
    gates = _gates(spools, _local(now), _running_by_state())
    due = gates.exclude(Job.objects.due(now).filter(spool_id__in=list(spools)))
    if only_job_id is not None:
        due = due.filter(id=only_job_id)
    candidates = list(due.order_by("timestamp", "id")[: limit + 20])
    if first_job_id is not None:
        candidates.sort(key=lambda job: job.id != first_job_id)
    claims = []
    for job in candidates:
        if len(claims) >= limit:
            break
        spool = spools[job.spool_id]
        step = spool.workflow.workflow.step(job.state)
        if step is None:
            _job_step_missing(job, spool, now)
            continue
        token = _job_claim(job=job, spool=spool, step=step, now=now)
        if token is not None:
            claims.append((job, token, step))
    return claims


def jobs_dispatch(*, first_job_id: int | None = None, extra: int = 0, limit: int | None = None) -> int:
    """Claim due jobs whose gates pass and hand each to a django-q2 worker; return how many.

    The dispatcher loop calls it every DISPATCHER_POLL_MS. At most
    DISPATCHER_QUEUE_AHEAD claimed jobs wait for a worker at any time, so the
    queue stays short and a Running job is nearly always really running; a
    worker that ends its time budget hands its job's next step over with
    ``first_job_id`` and ``extra=1, limit=1`` (the worker it frees).
    """
    if _shut_down():
        return 0
    capacity = settings.DISPATCHER_QUEUE_AHEAD + extra - Job.objects.queued().count()
    if limit is not None:
        capacity = min(capacity, limit)
    if capacity <= 0:
        return 0
    claims = _claim_due(limit=capacity, first_job_id=first_job_id)
    for job, token, step in claims:
        _job_enqueue(job, token, step)
    return len(claims)


def _job_step_missing(job: Job, spool: Spool, now: dt.datetime) -> None:
    """A reload removed the step a job waits at: it cannot run, so it is in Error with the reason."""
    note = f"[portal] step {job.state} is not in workflow v{spool.workflow.number} of spool {spool.name}\n"
    Job.objects.filter(id=job.id, status=S.WAITING).update(status=S.ERROR, output_tail=note, updated_at=now)


def _job_claim(*, job: Job, spool: Spool, step: Step, now: dt.datetime) -> uuid.UUID | None:
    """Waiting -> Running with a conditional update; None when another dispatcher was first or a gate closed."""
    token = uuid.uuid4()
    with transaction.atomic():
        if step.parallel is not None:
            # Count and claim under one lock, so two dispatchers never both fill the last slot of a step.
            SchedulerControl.objects.select_for_update().get_or_create(id=SchedulerControl.SINGLETON_ID)
            if Job.objects.running().filter(state=step.number).count() >= step.parallel:
                return None
        claimed = Job.objects.filter(id=job.id, status=S.WAITING, timestamp__lte=now).update(
            status=S.RUNNING,
            claim_token=token,
            lease_until=now + dt.timedelta(seconds=settings.JOB_QUEUE_GRACE_SECONDS),
            started_at=None,
            finished_at=None,
            return_code=None,  # the previous attempt's stay in the history
            output_tail="",
            worker="",
            ignore_time_window=False,
            updated_at=now,
        )
        if claimed != 1:
            return None
        JobAttempt.objects.create(
            job_id=job.id,
            state=job.state,
            attempt=job.attempt,
            type=job.type,
            workflow_version=spool.workflow,
            command=step.argv(spool=spool.name, generation=job.generation),
            claim_token=token,
            claimed_at=now,
        )
    return token


def _job_enqueue(job: Job, token: uuid.UUID, step: Step) -> None:
    from django_q.tasks import async_task

    try:
        async_task(
            RUN_TASK,
            job.id,
            str(token),
            task_name=f"job {job.id} step {step.number} attempt {job.attempt}",
            group="workflow-jobs",
            # a worker starts attempts for its budget, the last one may take the time limit: the margin covers the rest
            timeout=settings.JOB_WORKER_BUDGET_SECONDS + settings.JOB_TIME_LIMIT_SECONDS + 30,
        )
    except Exception:
        # The broker refused it: give the job back, so the next cycle tries again.
        if Job.objects.filter(id=job.id, claim_token=token, status=S.RUNNING, started_at__isnull=True).update(
            status=S.WAITING, claim_token=None, lease_until=None, updated_at=clock.now()
        ):
            JobAttempt.objects.filter(claim_token=token).update(outcome="not queued: the broker refused the task", status_after=S.WAITING)
        raise


# --- the worker ----------------------------------------------------------------------------


def _lease_renew(job_id: int, token: str) -> bool:
    """Renew the liveness lease; False when the job is no longer this worker's."""
    until = clock.now() + dt.timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return bool(Job.objects.filter(id=job_id, claim_token=token, status=S.RUNNING).update(lease_until=until))


def _command_env(job: Job, attempt: JobAttempt) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PORTAL_JOB_ID=str(job.id),
        PORTAL_SPOOL=job.spool.name,
        PORTAL_GENERATION=f"{job.generation:06d}",
        PORTAL_STATE=str(attempt.state),
        PORTAL_ATTEMPT=str(attempt.attempt),
    )
    return env


def job_run(*, job_id: int, token: str) -> str:
    """The django-q2 task: run a claimed attempt, then keep this worker busy with what is due.

    When a step ends, its worker goes on at once: with the job's next step if it
    is due and its gates pass, else with the oldest claim still waiting for a
    worker, else with the oldest due job (each claimed as the dispatcher claims).
    It does so for JOB_WORKER_BUDGET_SECONDS, then hands the next step to the
    queue and returns, so no task outlives its time limit and the pool turns over.
    """
    began = time.monotonic()
    done: list[str] = []
    claim: tuple[int, str] | None = (job_id, str(token))
    while claim is not None:
        job_id, token = claim
        done.append(_attempt_run(job_id, token))
        if time.monotonic() - began >= settings.JOB_WORKER_BUDGET_SECONDS:
            jobs_dispatch(first_job_id=job_id, extra=1, limit=1)
            break
        claim = _next_claim_for_worker(job_id)
    # the task's result in django-q2: how much this worker did, and its last few attempts
    return f"{len(done)} attempt(s); " + "; ".join(done[-5:])


def _next_claim_for_worker(job_id: int) -> tuple[int, str] | None:
    if _shut_down():
        return None
    if Job.objects.due(clock.now()).filter(id=job_id).exists():  # one cheap look before the gates
        own = _claim_due(limit=1, only_job_id=job_id)
        if own:
            return own[0][0].id, str(own[0][1])
    waiting = Job.objects.queued().order_by("timestamp", "id").values_list("id", "claim_token").first()
    if waiting is not None:
        return waiting[0], str(waiting[1])  # the pick in _attempt_run decides between this worker and the task's own
    other = _claim_due(limit=1)
    return (other[0][0].id, str(other[0][1])) if other else None


def _attempt_run(job_id: int, token: str) -> str:
    """Pick up a claimed attempt (once, whoever is first), run its command and record the outcome."""
    now = clock.now()
    me = worker_identity()
    picked = Job.objects.filter(id=job_id, claim_token=token, status=S.RUNNING, started_at__isnull=True).update(
        started_at=now, worker=me, lease_until=now + dt.timedelta(seconds=settings.JOB_LEASE_SECONDS), updated_at=now
    )
    if not picked:
        return f"job {job_id}: picked up elsewhere, or the claim is gone (Zombie, reset); nothing done"
    JobAttempt.objects.filter(claim_token=token).update(started_at=now, worker=me)
    attempt = JobAttempt.objects.select_related("job__spool").get(claim_token=token)
    result = run_command(
        attempt.command,
        cwd=str(settings.WORKFLOW_BASE_DIR),
        env=_command_env(attempt.job, attempt),
        time_limit=settings.JOB_TIME_LIMIT_SECONDS,
        tail_chars=settings.JOB_OUTPUT_TAIL_CHARS,
        still_ours=lambda: _lease_renew(job_id, token),
        check_every=max(settings.JOB_LEASE_SECONDS / 3, 0.5),
    )
    description = job_attempt_finish(job_id=job_id, token=token, result=result)
    return f"job {job_id}: return code {result.return_code}, {description}"


def job_attempt_finish(*, job_id: int, token: str, result: CommandResult) -> str:
    """Apply an attempt's return code to its job (DOMAIN §3), with the stop flag and `new`."""
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("spool__workflow").get(id=job_id)
        attempt = JobAttempt.objects.select_related("workflow_version").get(claim_token=token)
        now = clock.now()
        attempt.finished_at = now
        attempt.return_code = result.return_code
        attempt.output_tail = result.output_tail
        if job.status != S.RUNNING or str(job.claim_token) != str(token):
            attempt.outcome = f"not applied: the job was {job.status} by then"
            attempt.save()
            return attempt.outcome
        workflow: Workflow = (attempt.workflow_version or job.spool.workflow).workflow
        step = workflow.step(attempt.state)
        if step is None:
            outcome_status, description = S.ERROR, f"Error: step {attempt.state} is not in the workflow"
            fields = {"status": S.ERROR}
            new_step = None
        else:
            outcome = job.outcome(step=step, workflow=workflow, return_code=result.return_code, now=now)
            outcome_status, description, new_step = outcome.status, outcome.description, outcome.new_generation_step
            fields = {
                "status": outcome.status,
                "state": outcome.state,
                "attempt": outcome.attempt,
                "timestamp": outcome.timestamp,
                "type": outcome.type,
            }
        if job.stop_flag and outcome_status == S.WAITING:
            fields["status"] = outcome_status = S.PAUSE
            description += "; paused (stop flag)"
        if result.timed_out:
            description = f"time limit: {description}"
        fields |= {
            "finished_at": now,
            "return_code": result.return_code,
            "output_tail": result.output_tail,
            "claim_token": None,
            "lease_until": None,
            "stop_flag": False,
            "updated_at": now,
        }
        Job.objects.filter(id=job_id).update(**fields)
        if new_step is not None:
            created = _job_create(
                spool=job.spool, step=workflow.step(new_step), status=S.WAITING, timestamp=now, origin=JobOrigin.NEW
            )
            description += f"; new generation {created.generation:06d} at step {new_step}"
        attempt.outcome = description[:200]
        attempt.status_after = outcome_status
        attempt.save()
    return description


# --- zombies and finalize ----------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_gone(job: Job, now: dt.datetime, host: str) -> str | None:
    """Why a Running job has no live worker, or None while it may still have one."""
    if job.lease_until is None or job.lease_until < now:
        return f"no live worker: its lease ended at {iso_utc(job.lease_until)}"
    worker_host, _, pid = job.worker.rpartition(":")
    if worker_host == host and pid.isdigit() and not _pid_alive(int(pid)):
        return f"no live worker: process {job.worker} is gone"
    return None


def jobs_mark_zombies() -> int:
    """Running jobs whose worker is gone become Zombie (at dispatcher start-up and every few seconds).

    A worker renews its lease on the job while the command runs; a lapsed lease
    means the worker died (or lost the database). On this host a worker's
    process id is checked too, so a restart finds its orphans at once.
    """
    now = clock.now()
    host = socket.gethostname()
    found = 0
    for job in Job.objects.running().only("id", "claim_token", "lease_until", "worker"):
        why = _worker_gone(job, now, host)
        if why is None:
            continue
        with transaction.atomic():
            if Job.objects.filter(id=job.id, status=S.RUNNING, claim_token=job.claim_token).update(
                status=S.ZOMBIE, claim_token=None, lease_until=None, updated_at=now
            ):
                JobAttempt.objects.filter(claim_token=job.claim_token).update(
                    finished_at=now, outcome=f"Zombie: {why}"[:200], status_after=S.ZOMBIE
                )
                log.warning("job %s is Zombie: %s", job.id, why)
                found += 1
    return found


def dispatcher_sweep() -> int:
    """The dispatcher's periodic housekeeping: zombies, and a sign of life for the monitor."""
    SchedulerControl.load()
    SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID).update(dispatcher_seen_at=clock.now())
    return jobs_mark_zombies()


def generations_finalize() -> int:
    """Once per generation: a job at finalizeNext when it reached OK at least finalizeAfterDays ago."""
    now = clock.now()
    created = 0
    for spool in Spool.objects.filter(workflow__isnull=False).select_related("workflow"):
        workflow = spool.workflow.workflow
        finalized = Job.objects.filter(spool=spool, origin=JobOrigin.FINALIZE).values("generation")
        for step in workflow.steps.values():
            if step.finalize_next is None:
                continue
            done = (
                Job.objects.filter(spool=spool, state=step.number, status=S.OK, finished_at__lte=now - dt.timedelta(days=step.finalize_after_days))
                .exclude(origin=JobOrigin.FINALIZE)
                .exclude(generation__in=finalized)
                .order_by("generation")
            )
            for job in done:
                try:
                    with transaction.atomic():
                        _job_create(
                            spool=spool,
                            step=workflow.step(step.finalize_next),
                            status=S.WAITING,
                            timestamp=now,
                            origin=JobOrigin.FINALIZE,
                            generation=job.generation,
                        )
                    created += 1
                except IntegrityError:
                    continue  # another process finalized this generation first
    return created


def dispatcher_cycle(*, sweep: bool, finalize: bool = False) -> int:
    """One turn of the dispatcher loop: housekeeping and the finalize check when asked, then start what is due."""
    if sweep:
        dispatcher_sweep()
    if finalize:
        generations_finalize()
    return jobs_dispatch()

