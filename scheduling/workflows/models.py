"""Workflow jobs (DOMAIN §3): spools, their workflow versions, jobs and attempts.

Imported by ``scheduling/models.py``; kept apart from the scheduler tasks of §2,
which live in the same app.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Now

from portal import clock
from portal.lib.times import iso_utc
from scheduling.workflows.workflow import RETRY_RETURN_CODE, SPOOL_NAME_PATTERN, Step, Workflow


class JobStatus(models.TextChoices):
    WAITING = "Waiting"
    RUNNING = "Running"
    OK = "OK"
    ERROR = "Error"
    PAUSE = "Pause"
    DISABLED = "Disabled"
    ZOMBIE = "Zombie"


S = JobStatus
# DOMAIN §3: the statuses from which each operator command is allowed.
# `pause` of a Running job only sets the stop flag (see Job.pause_sets_stop_flag).
COMMAND_ALLOWED_FROM: dict[str, frozenset[str]] = {
    "start": frozenset({S.WAITING, S.PAUSE}),
    "pause": frozenset({S.WAITING, S.DISABLED, S.RUNNING}),
    "reset": frozenset({S.ERROR, S.ZOMBIE}),
    "schedule": frozenset({S.WAITING, S.PAUSE, S.ERROR, S.DISABLED}),
    "disable": frozenset({S.WAITING, S.PAUSE, S.ERROR}),
    "enable": frozenset({S.DISABLED}),
    "comment": frozenset(S.values),
}
JOB_COMMANDS = tuple(COMMAND_ALLOWED_FROM)


class JobOrigin(models.TextChoices):
    ADD = "add"  # an operator's `add`
    NEW = "new"  # the `new` key of a step that returned 0
    FINALIZE = "finalize"  # finalizeNext after finalizeAfterDays


class Spool(models.Model):
    """A named process with its workflow file; generations are numbered per spool."""

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(rf"^{SPOOL_NAME_PATTERN}$", "letters, digits, '.', '_' and '-' only")],
    )
    workflow_file = models.CharField(max_length=500, help_text="read again by reload; relative to the project directory")
    enabled = models.BooleanField(default=True, help_text="off: its jobs are not started")
    workflow = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    last_generation = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)


class WorkflowVersion(models.Model):
    """One loaded workflow file of a spool, kept with its checksum; the spool points at the one in force."""

    spool = models.ForeignKey(Spool, on_delete=models.CASCADE, related_name="workflow_versions")
    number = models.PositiveIntegerField()
    source = models.CharField(max_length=500)
    text = models.TextField()
    checksum = models.CharField(max_length=64)
    steps = models.JSONField()
    loaded_at = models.DateTimeField(default=clock.now)
    loaded_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["spool", "-number"]
        constraints = [models.UniqueConstraint(fields=["spool", "number"], name="workflow_version_unique")]

    def __str__(self) -> str:
        return f"{self.spool_id and self.spool.name} v{self.number} ({self.checksum[:12]})"

    @property
    def workflow(self) -> Workflow:
        # A stored version never changes, so its parsed steps are kept per process, by id and checksum:
        # a claim loads the version with its steps deferred (WITHOUT_STEPS), read only on a miss.
        key = (self.id, self.checksum)
        cached = _WORKFLOWS.get(key)
        if cached is None:
            cached = _WORKFLOWS[key] = Workflow.from_json(self.steps)
        return cached


_WORKFLOWS: dict[tuple[int, str], Workflow] = {}
# What a claim leaves unread of a spool's version in force: a 10,000-step file costs no more than one step.
WITHOUT_STEPS = ("workflow__text", "workflow__steps")


@dataclass(frozen=True)
class Outcome:
    """What a finished attempt does to its job (DOMAIN §3's return codes)."""

    status: str
    state: int
    attempt: int
    timestamp: dt.datetime
    type: str
    description: str
    new_generation_step: int | None = None


def db_now_plus(seconds: float) -> models.Expression:
    """The database's clock plus ``seconds``: leases are judged by one clock, never a host's (DOMAIN §5)."""
    return models.ExpressionWrapper(Now() + dt.timedelta(seconds=seconds), output_field=models.DateTimeField())


# A claim whose hand-over lease has lapsed: no worker picked it up in time (the broker lost the task).
CLAIM_LAPSED = models.Q(lease_until__isnull=True) | models.Q(lease_until__lt=Now())
# A claim a worker may still pick up.
CLAIM_LIVE = models.Q(claim_token__isnull=False, lease_until__gte=Now())


class JobQuerySet(models.QuerySet):
    def running(self) -> JobQuerySet:
        """Started by a worker, which holds its lease (DOMAIN §5: Running only once a worker has the step)."""
        return self.filter(status=JobStatus.RUNNING)

    def queued(self) -> JobQuerySet:
        """Claimed by a dispatcher, not yet picked up by a worker: Waiting "for a free worker"."""
        return self.filter(CLAIM_LIVE, status=JobStatus.WAITING)

    def occupying(self) -> JobQuerySet:
        """Jobs that hold a place of their step's ``parallel`` limit: Running, or claimed for a worker."""
        return self.filter(models.Q(status=JobStatus.RUNNING) | models.Q(CLAIM_LIVE, status=JobStatus.WAITING))

    def due(self, now: dt.datetime) -> JobQuerySet:
        """Waiting, its time come, and not claimed (or its claim lapsed before any worker took it)."""
        return self.filter(models.Q(claim_token__isnull=True) | CLAIM_LAPSED, status=JobStatus.WAITING, timestamp__lte=now)

    def needing_attention(self) -> JobQuerySet:
        """DOMAIN §6: every job in Error or Zombie, and every Running job whose stop flag waits for its attempt to end."""
        return self.filter(models.Q(status__in=[JobStatus.ERROR, JobStatus.ZOMBIE]) | models.Q(status=JobStatus.RUNNING, stop_flag=True))


class Job(models.Model):
    """One generation of a spool stepping through its workflow: a row of the monitor."""

    spool = models.ForeignKey(Spool, on_delete=models.PROTECT, related_name="jobs")
    generation = models.PositiveIntegerField()
    state = models.PositiveIntegerField(help_text="the step number")
    attempt = models.PositiveIntegerField(default=1)
    type = models.CharField(max_length=200, blank=True, help_text="the step's text")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PAUSE)
    timestamp = models.DateTimeField(help_text="when the step is due")
    comment = models.TextField(blank=True)
    stop_flag = models.BooleanField(default=False)
    ignore_time_window = models.BooleanField(default=False, help_text="started for this generation: mintime/maxtime waived once")
    origin = models.CharField(max_length=10, choices=JobOrigin.choices, default=JobOrigin.ADD)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    return_code = models.IntegerField(null=True, blank=True)
    output_tail = models.TextField(blank=True)
    # The claim of the current attempt: who holds it and until when, by the database's clock. Waiting:
    # the hand-over lease (a worker must pick it up by then); Running: the worker's liveness lease.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # When a sweep first saw the lease of a Running job lapsed (database clock); a renewal clears it.
    lapse_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker running it")

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "timestamp"], name="job_due_idx"),
            models.Index(fields=["status", "id"], name="job_status_idx"),
            models.Index(fields=["spool", "generation"], name="job_generation_idx"),
            # The monitor and the API page by id within a spool (and a status): keyset, no sort.
            models.Index(fields=["spool", "id"], name="job_spool_idx"),
            models.Index(fields=["spool", "status", "id"], name="job_spool_status_idx"),
        ]
        constraints = [
            # finalizeNext runs once per generation, however often the check runs.
            models.UniqueConstraint(
                fields=["spool", "generation"],
                condition=models.Q(origin="finalize"),
                name="job_finalize_once_per_generation",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.id} {self.spool_id and self.spool.name}/{self.generation:06d} step {self.state} ({self.status})"

    def allows(self, command: str) -> bool:
        return self.status in COMMAND_ALLOWED_FROM[command]

    def schedule_note(self) -> str:
        """What a new timestamp leaves to do: only a Waiting job runs at its timestamp (DOMAIN §3, `schedule`)."""
        if self.status == S.ERROR:
            return f"job {self.id} stays in Error and never runs at that time by itself: reset it with a time (reset --at) to run it again then"
        if self.status == S.PAUSE:
            return f"job {self.id} stays in Pause: start it with a time (start --at) to run it then"
        if self.status == S.DISABLED:
            return f"job {self.id} stays Disabled: enable it, then start it with a time (start --at)"
        return ""

    @property
    def pause_sets_stop_flag(self) -> bool:
        """A Running job is not stopped: it finishes its attempt, then pauses."""
        return self.status == JobStatus.RUNNING

    def outcome(self, *, step: Step, workflow: Workflow, return_code: int, now: dt.datetime) -> Outcome:
        """The job after this attempt: 0 next step or OK, 9 try again after the delay, other errornext or Error."""
        if return_code == 0:
            if step.next is None:
                return Outcome(S.OK, step.number, self.attempt, self.timestamp, self.type, "OK", step.new)
            return self._move_to(workflow.step(step.next), "next", now=now, new_generation_step=step.new)
        if return_code == RETRY_RETURN_CODE:
            if step.retries is not None and self.attempt >= step.retries:
                return Outcome(S.ERROR, step.number, self.attempt, self.timestamp, self.type, f"Error: attempt {self.attempt} of {step.retries} returned 9")
            later = now + step.rerun_delay()
            return Outcome(S.WAITING, step.number, self.attempt + 1, later, self.type, f"again at {later:%Y-%m-%d %H:%M:%S} UTC")
        if step.errornext is not None:
            return self._move_to(workflow.step(step.errornext), "errornext", now=now)
        return Outcome(S.ERROR, step.number, self.attempt, self.timestamp, self.type, "Error")

    def _move_to(self, target: Step, key: str, *, now: dt.datetime, new_generation_step: int | None = None) -> Outcome:
        """Through `next` or `errornext`: at once, unless the job already ran that step (a loop, DOMAIN §5).

        A loop waits the step's delay (at least RERUN_FLOOR_SECONDS), so a step whose
        `next` is itself cannot keep a worker to itself while other jobs are due.
        """
        if not self.attempts.filter(state=target.number).exists():
            return Outcome(S.WAITING, target.number, 1, now, target.label, f"{key} step {target.number}", new_generation_step)
        later = now + target.rerun_delay()
        description = f"{key} step {target.number} again (a loop) at {later:%Y-%m-%d %H:%M:%S} UTC"
        return Outcome(S.WAITING, target.number, 1, later, target.label, description, new_generation_step)

    def as_row(self) -> dict:
        """The job as the API and the command-line monitor name its fields (times ISO-8601 UTC)."""
        return {
            "id": self.id,
            "spool": self.spool.name,
            "generation": self.generation,
            "state": self.state,
            "attempt": self.attempt,
            "type": self.type,
            "status": self.status,
            "timestamp": iso_utc(self.timestamp),
            "comment": self.comment,
            "stop_flag": self.stop_flag,
            "started": iso_utc(self.started_at),
            "finished": iso_utc(self.finished_at),
            "return_code": self.return_code,
            "output_tail": self.output_tail,
        }


class JobAttempt(models.Model):
    """The history of a job: one row per attempt, written by the dispatcher and the worker."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts")
    state = models.PositiveIntegerField()
    attempt = models.PositiveIntegerField()
    type = models.CharField(max_length=200, blank=True)
    workflow_version = models.ForeignKey(WorkflowVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    command = models.JSONField(help_text="the arguments as run, placeholders filled in")
    claim_token = models.UUIDField(unique=True)
    claimed_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    return_code = models.IntegerField(null=True, blank=True)
    output_tail = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=200, blank=True, help_text="what the attempt did to the job")
    status_after = models.CharField(max_length=10, choices=JobStatus.choices, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"job {self.job_id} step {self.state} attempt {self.attempt}"


class SchedulerControl(models.Model):
    """The one row every process reads: is the scheduler shut down, and when did a dispatcher last look."""

    shut_down = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    dispatcher_seen_at = models.DateTimeField(null=True, blank=True)
    # The start time of the portal processes whose first heartbeat tick was E_HeartbeatStart (wall clock).
    heartbeat_started_at = models.DateTimeField(null=True, blank=True)

    SINGLETON_ID = 1

    class Meta:
        verbose_name = "scheduler control"

    def __str__(self) -> str:
        return "scheduler shut down" if self.shut_down else "scheduler running"

    @classmethod
    def load(cls) -> SchedulerControl:
        obj, _ = cls.objects.get_or_create(id=cls.SINGLETON_ID)
        return obj

    def dispatcher_is_stale(self, now: dt.datetime) -> bool:
        """No sign of the dispatcher for DISPATCHER_STALE_SECONDS while the scheduler runs (never seen: not yet started)."""
        if self.shut_down or self.dispatcher_seen_at is None:
            return False
        return now - self.dispatcher_seen_at > dt.timedelta(seconds=settings.DISPATCHER_STALE_SECONDS)
