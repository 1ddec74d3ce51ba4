"""Workflow jobs (DOMAIN §3): loading workflows, operator commands, the dispatcher and the worker.

Re-exported by ``scheduling/services.py``. Every operator command is one function
used by the CLI, the API, the admin and the web monitor alike: it checks the
actor's role, applies DOMAIN §3's precondition with a compare-and-set on the
job's status (refusing with JobConflict and the current status), and is audited.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import models, transaction
from django.db.models import F

from portal import clock, roles
from portal.lib.times import iso_utc
from portal.services import audit_record
from scheduling.workflows.alerts import job_status_follow
from scheduling.workflows.ini import IniError, file_text
from scheduling.workflows.models import (
    COMMAND_ALLOWED_FROM,
    Job,
    JobAttempt,
    JobOrigin,
    JobStatus,
    SchedulerControl,
    Spool,
    WorkflowVersion,
)
from scheduling.workflows.wakeup import jobs_wake
from scheduling.workflows.workflow import Step, Workflow, WorkflowError, checksum, parse_workflow, spool_name_is_valid

log = logging.getLogger(__name__)

S = JobStatus


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


AUDITED_JOB_FIELDS = ("status", "state", "attempt", "timestamp", "comment", "stop_flag")


def _job_snapshot(job: Job) -> dict:
    return {
        name: iso_utc(value) if isinstance(value, dt.datetime) else value
        for name in AUDITED_JOB_FIELDS
        for value in [getattr(job, name)]
    }


# --- loading workflow files ----------------------------------------------------------------

# What Spool.workflow_file (and WorkflowVersion.source, as long) holds: a longer path would fail on write.
WORKFLOW_PATH_MAX_CHARS = Spool._meta.get_field("workflow_file").max_length


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


def workflow_read(*, path: str) -> tuple[str, Workflow]:
    """Read and check a workflow file: its text and steps, or InvalidInput/WorkflowError naming what is wrong.

    The text is UTF-8 (a BOM allowed), else Latin-1, of a regular file of at most
    1 MiB: a device, a FIFO or a bigger file is refused without reading it whole.
    """
    if not path or len(path) > WORKFLOW_PATH_MAX_CHARS or "\0" in path:
        raise InvalidInput("file", f"a workflow file's path is 1 to {WORKFLOW_PATH_MAX_CHARS} characters, without NUL")
    try:
        text = file_text(workflow_path(path))
    except IniError as exc:
        raise WorkflowError(exc.problems, path) from None
    except OSError as exc:
        raise InvalidInput("file", f"workflow file {path!r} cannot be read: {exc.strerror or exc}") from None
    return text, parse_workflow(text, source=path)


def _workflow_store(*, spool_name: str, path: str, text: str, workflow: Workflow, actor, reason: str) -> LoadReport:
    """Make a checked workflow the spool's version in force; the caller holds the transaction."""
    digest = checksum(text)
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
        loaded_by=roles.actor_label(actor),
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


def workflow_load(*, spool_name: str, path: str, actor, reason: str = "") -> LoadReport:
    """Load (or reload) a spool's workflow file; a new spool name creates the spool.

    A bad file raises WorkflowError naming each section, key and value, and the
    workflow in force stays. Loading the same text again keeps the version.
    """
    roles.require(actor, roles.ADMINISTRATORS, "loading a workflow")
    if not spool_name_is_valid(spool_name):
        raise InvalidInput("spool", f"spool name {spool_name!r}: use letters, digits, '.', '_' and '-' only, not '.' or '-' first")
    text, workflow = workflow_read(path=path)
    with transaction.atomic():
        return _workflow_store(spool_name=spool_name, path=path, text=text, workflow=workflow, actor=actor, reason=reason)


@dataclass
class ReloadReport:
    loaded: list[LoadReport] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (spool, why)

    def lines(self) -> list[str]:
        return [str(report) for report in self.loaded] + [f"spool {name}: {why}" for name, why in self.refused]


def workflows_reload(*, actor, spools: Iterable[Spool] | None = None, reason: str = "") -> ReloadReport:
    """Read every spool's workflow file again; a refused file leaves that spool's workflow in force.

    Every file is read and checked first; the versions that pass and the audit
    row of the reload are then written in one transaction, so a failure while
    writing leaves every spool as it was and no reload half-recorded.
    """
    roles.require(actor, roles.ADMINISTRATORS, "reloading workflows")
    report = ReloadReport()
    chosen = list(spools if spools is not None else Spool.objects.select_related("workflow").order_by("name"))
    before = {spool.name: spool.workflow.number if spool.workflow else None for spool in chosen}
    checked = []
    for spool in chosen:
        try:
            checked.append((spool, *workflow_read(path=spool.workflow_file)))
        except (WorkflowError, InvalidInput) as exc:
            report.refused.append((spool.name, str(exc)))
    with transaction.atomic():
        for spool, text, workflow in checked:
            report.loaded.append(
                _workflow_store(spool_name=spool.name, path=spool.workflow_file, text=text, workflow=workflow, actor=actor, reason=reason)
            )
        # The reload itself is an administrator's action, audited even when no file changed
        # (each new version is audited on its own).
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
    roles.require(actor, roles.ADMINISTRATORS, "enabling or disabling a spool")
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


def _next_generation(spool_id: int) -> int:
    """Numbered 1, 2, ... per spool; the row lock of the update serialises concurrent callers."""
    Spool.objects.filter(id=spool_id).update(last_generation=F("last_generation") + 1)
    return Spool.objects.filter(id=spool_id).values_list("last_generation", flat=True).get()


def job_create(*, spool: Spool, step: Step, status: str, timestamp: dt.datetime, origin: str, generation: int | None = None) -> Job:
    now = clock.now()
    job = Job.objects.create(
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
    if status == S.WAITING:
        jobs_wake()  # at the commit of the caller's transaction
    return job


def _spool_named(spool: Spool | str) -> Spool:
    if isinstance(spool, Spool):
        return spool
    found = Spool.objects.select_related("workflow").filter(name=spool).first()
    if found is None:
        raise InvalidInput("spool", f"no spool named {spool!r}")
    return found


def job_add(*, spool: Spool | str, state: int, actor, at: dt.datetime | None = None, reason: str = "") -> Job:
    """A new job for the spool's next generation at that step: Pause, attempt 1, at the time or now."""
    roles.require(actor, roles.OPERATORS, "adding a job")
    spool = _spool_named(spool)
    step = spool.workflow.workflow.step(state) if spool.workflow else None
    if step is None:
        raise InvalidInput("state", f"spool {spool.name} has no step {state} in its workflow")
    with transaction.atomic():
        job = job_create(spool=spool, step=step, status=S.PAUSE, timestamp=at or clock.now(), origin=JobOrigin.ADD)
        audit_record(actor=actor, action="job.add", obj=job, before=None, after=_job_snapshot(job), reason=reason)
    return job


def _job_command(*, job: Job | int, command: str, actor, reason: str, changes: Callable[[Job], dict]) -> Job:
    """Apply one command with a compare-and-set on the status read; refuse with the current status."""
    roles.require(actor, roles.OPERATORS, f"the {command} command")
    job_id = job.id if isinstance(job, Job) else job
    for _ in range(3):  # the status may move between the read and the write (a worker finished): read again
        with transaction.atomic():
            current = Job.objects.select_related("spool").get(id=job_id)
            if not current.allows(command):
                raise JobConflict(current, command)
            fields = changes(current) | {"updated_at": clock.now()}
            # A claim no worker has started yet does not outlive a command that changes the job (DOMAIN §5).
            dropped = current.claim_token if current.status == S.WAITING and command != "comment" else None
            if dropped is not None:
                fields |= {"claim_token": None, "lease_until": None}
            if Job.objects.filter(id=job_id, status=current.status, claim_token=current.claim_token).update(**fields) != 1:
                continue
            if dropped is not None:
                JobAttempt.objects.filter(claim_token=dropped, started_at__isnull=True).delete()
            before = _job_snapshot(current)
            for name, value in fields.items():
                setattr(current, name, value)
            job_status_follow(job=current, before=before["status"], after=current.status)
            if current.status == S.WAITING:
                jobs_wake()
            audit_record(actor=actor, action=f"job.{command}", obj=current, before=before, after=_job_snapshot(current), reason=reason)
            return current
    current = Job.objects.get(id=job_id)
    raise JobConflict(current, command)


def job_start(*, job: Job | int, actor, named: bool = True, at: dt.datetime | None = None, reason: str = "") -> Job:
    """Waiting at ``at`` or now, stop flag cleared; started for one named generation it may also ignore mintime/maxtime once."""
    return _job_command(
        job=job,
        command="start",
        actor=actor,
        reason=reason,
        changes=lambda j: {"status": S.WAITING, "timestamp": at or clock.now(), "stop_flag": False, "ignore_time_window": named},
    )


def job_pause(*, job: Job | int, actor, reason: str = "") -> Job:
    """Waiting or Disabled: Pause. Running: the stop flag, so the attempt ends and the job pauses after it."""

    def changes(j: Job) -> dict:
        if j.pause_sets_stop_flag:
            return {"stop_flag": True}
        return {"status": S.PAUSE, "ignore_time_window": False}

    return _job_command(job=job, command="pause", actor=actor, reason=reason, changes=changes)


def job_reset(*, job: Job | int, actor, at: dt.datetime | None = None, reason: str = "") -> Job:
    """Error or Zombie: the same step again from attempt 1, at ``at`` or now."""
    return _job_command(
        job=job,
        command="reset",
        actor=actor,
        reason=reason,
        changes=lambda j: {"status": S.WAITING, "attempt": 1, "timestamp": at or clock.now(), "stop_flag": False, "worker": "", "lapse_seen_at": None},
    )


def job_schedule(*, job: Job | int, timestamp: dt.datetime, actor, reason: str = "") -> Job:
    """A new due time; the status stays (``Job.schedule_note`` says what else a job that is not Waiting needs)."""
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


# The commands that take a time (DOMAIN §5): the job is Waiting at it instead of now.
TIMED_COMMANDS = ("start", "reset")


def spool_jobs_command(
    *, command: str, spool: Spool | str, actor, generation: int | None = None, at: dt.datetime | None = None, reason: str = ""
) -> SpoolCommandReport:
    """start|pause|reset|disable|enable for a spool's jobs, or for one named generation.

    For a whole spool the command applies to the jobs whose status allows it
    (pause pauses what can pause); a named generation's jobs must all allow it.
    ``at`` (start and reset only) makes them Waiting at that time instead of now.
    """
    if command not in SIMPLE_COMMANDS:
        raise InvalidInput("command", f"unknown command {command!r}; one of {', '.join(SIMPLE_COMMANDS)}")
    if at is not None and command not in TIMED_COMMANDS:
        raise InvalidInput("timestamp", f"{command} takes no time; only {' and '.join(TIMED_COMMANDS)} do")
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
    if command in TIMED_COMMANDS:
        extra["at"] = at
    for job in list(jobs):
        try:
            report.changed.append(SIMPLE_COMMANDS[command](job=job, actor=actor, reason=reason, **extra))
        except JobConflict as exc:
            report.refused.append(exc)
    return report


# --- the scheduler switch --------------------------------------------------------------------


def _scheduler_switch(*, shut_down: bool, actor, reason: str) -> SchedulerControl:
    roles.require(actor, roles.ADMINISTRATORS, "shutting down or resuming the scheduler")
    SchedulerControl.load()
    now = clock.now()
    with transaction.atomic():
        changed = SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID, shut_down=not shut_down).update(
            shut_down=shut_down, changed_at=now, changed_by=roles.actor_label(actor), reason=reason
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


