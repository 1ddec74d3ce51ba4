"""Calendar groups, scheduler tasks and their transitions (DOMAIN §2)."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from monitoring.summaries.models import Direction, MonitoredInterface
from portal import clock
from portal.lib.taskrun import TaskRun
from portal.lib.times import iso_utc
from scheduling.scheduler.business_time import HORIZON_DAYS, Calendar, calendars_next_open, calendars_open

ISO_WEEKDAYS = [(1, "Monday"), (2, "Tuesday"), (3, "Wednesday"), (4, "Thursday"), (5, "Friday"), (6, "Saturday"), (7, "Sunday")]
MIN_INTERVAL_SECONDS = 10


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a known time zone (an IANA name such as Europe/Berlin)") from None


def validate_weekend_days(value) -> None:
    if not isinstance(value, list) or not all(isinstance(day, int) and not isinstance(day, bool) for day in value):
        raise ValidationError("weekend days are a list of ISO weekday numbers (1 = Monday ... 7 = Sunday)")
    bad = [day for day in value if not 1 <= day <= 7]
    if bad:
        raise ValidationError(f"{bad[0]} is not an ISO weekday number (1 = Monday ... 7 = Sunday)")
    if len(set(value)) != len(value):
        raise ValidationError("a weekend day is listed twice")
    if len(set(value)) == 7:
        raise ValidationError("every day is a weekend day: the group would never be open")


class CalendarGroup(models.Model):
    """A business calendar: time zone, weekend days, closed dates and opening hours."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    weekend_days = models.JSONField(default=list, blank=True, validators=[validate_weekend_days])
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)

    @property
    def active_entries(self) -> list[CalendarEntry]:
        """Entries not soft-deleted, by date (prefetched as ``_active_entries`` by the selectors)."""
        cached = getattr(self, "_active_entries", None)
        if cached is not None:
            return cached
        return list(self.entries.filter(deleted=False).order_by("date"))

    def calendar(self) -> Calendar:
        return Calendar.build(
            timezone=self.timezone,
            weekend_days=self.weekend_days,
            closed_dates=[entry.date for entry in self.active_entries],
            periods=[(entry.open_time, entry.close_time) for entry in self.schedule_entries.all()],
        )

    def is_open(self, instant: dt.datetime) -> bool:
        return self.calendar().is_open(instant)

    def next_open(self, instant: dt.datetime) -> dt.datetime | None:
        return self.calendar().next_open(instant)

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "timezone": self.timezone,
            "weekend_days": list(self.weekend_days),
            "entries": [{"date": e.date.isoformat(), "description": e.description} for e in self.active_entries],
            "schedule_entries": [
                {"type_code": s.type_code, "open_time": s.open_time.isoformat(), "close_time": s.close_time.isoformat()}
                for s in self.schedule_entries.all()
            ],
        }


class CalendarEntry(models.Model):
    """A non-business date of a group (a holiday); soft-deleted, never removed, to keep history."""

    group = models.ForeignKey(CalendarGroup, on_delete=models.CASCADE, related_name="entries")
    date = models.DateField()
    description = models.CharField(max_length=200, blank=True)
    deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["date"]
        verbose_name_plural = "calendar entries"
        constraints = [
            models.UniqueConstraint(
                fields=["group", "date"], condition=models.Q(deleted=False), name="calendar_entry_one_active_per_date"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group.name} {self.date} {self.description}".strip()

    def save(self, *args, **kwargs) -> None:
        # Soft deletion records when, whichever screen ticked it (the group's inline too).
        if self.deleted and self.deleted_at is None:
            self.deleted_at = clock.now()
        elif not self.deleted:
            self.deleted_at = None
        super().save(*args, **kwargs)

    def snapshot(self) -> dict:
        return {"group": self.group.name, "date": self.date.isoformat(), "description": self.description, "deleted": self.deleted}

    def status(self, today: dt.date) -> str:
        if self.deleted:
            return "Deleted"
        return "Historic" if self.date < today else "Active"


class ScheduleEntry(models.Model):
    """Opening hours of a group on its business days: [open, close) on the group's wall clock."""

    group = models.ForeignKey(CalendarGroup, on_delete=models.CASCADE, related_name="schedule_entries")
    type_code = models.CharField(max_length=32)
    open_time = models.TimeField()
    close_time = models.TimeField()

    class Meta:
        ordering = ["open_time", "type_code"]
        verbose_name_plural = "schedule entries"
        constraints = [
            models.CheckConstraint(condition=models.Q(close_time__gt=models.F("open_time")), name="schedule_entry_close_after_open")
        ]

    def __str__(self) -> str:
        return f"{self.type_code} {self.open_time:%H:%M}-{self.close_time:%H:%M}"

    def clean(self) -> None:
        if self.open_time is not None and self.close_time is not None and self.close_time <= self.open_time:
            raise ValidationError({"close_time": f"close time {self.close_time} must be after open time {self.open_time}"})


class Subtype(models.TextChoices):
    HOSTED_SERVICE_MONITOR = "HOSTED_SERVICE_MONITOR"
    INVOKED_SERVICE_MONITOR = "INVOKED_SERVICE_MONITOR"
    BATCH_MONITOR = "BATCH_MONITOR"


# The interfaces a subtype may watch: a summary of hosted services covers
# hosted interfaces only, and so on; the batch scan takes any.
SUBTYPE_DIRECTION = {
    Subtype.HOSTED_SERVICE_MONITOR: Direction.HOSTED,
    Subtype.INVOKED_SERVICE_MONITOR: Direction.INVOKED,
}


class TaskState(models.TextChoices):
    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    PROCESSING = "PROCESSING"
    ERROR = "ERROR"
    SUSPENDED = "SUSPENDED"
    DISABLED = "DISABLED"


class TaskEvent(models.TextChoices):
    ENABLE = "E_Enable"
    DISABLE = "E_Disable"
    SUSPEND = "E_Suspend"
    RESUME = "E_Resume"
    RUN_NOW = "E_RunNow"
    HEARTBEAT = "E_Heartbeat"
    HEARTBEAT_START = "E_HeartbeatStart"
    ACTION_DONE = "E_ActionDone"
    ACTION_FAILED = "E_ActionFailed"


# Operator commands and the states each is allowed from (anything else is refused
# with the task's current state).
COMMAND_FROM = {
    "enable": {TaskState.INACTIVE, TaskState.DISABLED},
    "disable": {TaskState.ACTIVE, TaskState.PROCESSING, TaskState.ERROR, TaskState.SUSPENDED},
    "suspend": {TaskState.ACTIVE, TaskState.PROCESSING, TaskState.ERROR},
    "resume": {TaskState.SUSPENDED},
    "run-now": {TaskState.ACTIVE, TaskState.ERROR},
}


# A task that no worker holds: what every move out of PROCESSING (and into a state without a claim) writes.
NO_CLAIM = {"claim_token": None, "claimed_at": None, "claim_expires_at": None}


class SchedulerTaskQuerySet(models.QuerySet):
    def due(self, now: dt.datetime) -> SchedulerTaskQuerySet:
        """ACTIVE tasks whose timeout has come and ERROR tasks whose retry time has."""
        return self.filter(state__in=[TaskState.ACTIVE, TaskState.ERROR], next_timeout_at__lte=now)

    def claim_expired(self, now: dt.datetime) -> SchedulerTaskQuerySet:
        return self.filter(state=TaskState.PROCESSING, claim_expires_at__lt=now)

    def resume_due(self, now: dt.datetime) -> SchedulerTaskQuerySet:
        return self.filter(state=TaskState.SUSPENDED, resume_at__lte=now)


class SchedulerTask(models.Model):
    """A periodic action over some interfaces, on a business calendar, driven by the heartbeat."""

    name = models.CharField(max_length=200, unique=True)
    subtype = models.CharField(max_length=32, choices=Subtype.choices)
    interfaces = models.ManyToManyField(MonitoredInterface, blank=True, related_name="scheduler_tasks")
    calendar_groups = models.ManyToManyField(
        CalendarGroup, blank=True, related_name="scheduler_tasks", help_text="none: open around the clock; several: open when any is"
    )
    interval_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(MIN_INTERVAL_SECONDS), MaxValueValidator(366 * 86400)], help_text="the monitoring interval"
    )
    enabled = models.BooleanField(default=True)

    state = models.CharField(max_length=12, choices=TaskState.choices, default=TaskState.INACTIVE, editable=False)
    next_timeout_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_interval_end_at = models.DateTimeField(null=True, blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    suspended_reason = models.TextField(blank=True, editable=False)
    suspended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    suspended_at = models.DateTimeField(null=True, blank=True, editable=False)
    resume_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The claim of a PROCESSING task: who may finish it, for which interval end,
    # and until when its worker counts as alive.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    claim_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)

    objects = SchedulerTaskQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["state", "next_timeout_at"], name="scheduler_task_due_idx")]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.interval_seconds)

    def may(self, command: str) -> bool:
        return self.state in COMMAND_FROM[command]

    @property
    def is_failing(self) -> bool:
        """In ERROR, or running the retry of a failed action: one TASK_ERROR episode spans the retries."""
        return self.state == TaskState.ERROR or (self.state == TaskState.PROCESSING and self.consecutive_failures > 0)

    def calendars(self) -> list[Calendar]:
        return [group.calendar() for group in self.calendar_groups.all()]

    def is_open(self, instant: dt.datetime) -> bool:
        return calendars_open(self.calendars(), instant)

    def next_open(self, instant: dt.datetime) -> dt.datetime | None:
        return calendars_next_open(self.calendars(), instant)

    def interval_start(self) -> dt.datetime:
        """Where the next action's interval begins: the last interval end."""
        return self.last_interval_end_at or (self.claimed_at or clock.now()) - self.interval

    def timeout_before_deferral(self) -> dt.datetime | None:
        """The timeout this task had before any tick moved it into business time (None: no timeout runs).

        ACTIVE: the last interval end + interval; ERROR: the last failure + its backoff.
        """
        if self.state == TaskState.ACTIVE and self.last_interval_end_at is not None:
            return self.last_interval_end_at + self.interval
        if self.state == TaskState.ERROR and self.last_error_at is not None:
            return self.last_error_at + self.retry_delay(self.consecutive_failures)
        return None

    # The moves of the heartbeat's state machine: the fields each writes and the note its transition keeps,
    # the same whether one task moves (services.task_move) or many at once (moves.tasks_move).

    def claim_change(self, *, now: dt.datetime, token: uuid.UUID) -> tuple[dict, str]:
        """To PROCESSING for the interval [last interval end, now), held by ``token``."""
        start = self.interval_start()
        retry = f" (retry after {self.consecutive_failures} failure(s))" if self.state == TaskState.ERROR else ""
        fields = {
            "claim_token": token,
            "claimed_at": now,
            "claim_expires_at": now + dt.timedelta(seconds=settings.SCHEDULER_CLAIM_SECONDS),
            "last_interval_end_at": start,
        }
        return fields, f"action over [{iso_utc(start)}, {iso_utc(now)}){retry}"

    def done_change(self) -> tuple[dict, str]:
        """Back to ACTIVE after the claimed action: the interval ends where the claim began."""
        start, end = self.interval_start(), self.claimed_at
        fields = {
            "last_interval_end_at": end,
            "last_fired_at": end,
            "next_timeout_at": end + self.interval,
            "consecutive_failures": 0,
            "last_error": "",
            "last_error_at": None,
            **NO_CLAIM,
        }
        return fields, f"{self.subtype} over [{iso_utc(start)}, {iso_utc(end)})"

    def error_change(self, *, now: dt.datetime, error: str, retry_at: dt.datetime | None = None) -> tuple[dict, str]:
        """ERROR with the error kept and the next retry after a backoff that grows with each failure (or at ``retry_at``)."""
        failures = self.consecutive_failures + 1
        retry_at = retry_at or now + self.retry_delay(failures)
        fields = {
            "consecutive_failures": failures,
            "last_error": error,
            "last_error_at": now,
            "next_timeout_at": retry_at,
            **NO_CLAIM,
        }
        return fields, f"{error} (failure {failures} in a row; retry at {iso_utc(retry_at)})"

    def deferral(self, now: dt.datetime) -> tuple[dt.datetime | None, str]:
        """Outside business time: the next business instant and the transition's note, or None and the error."""
        later = self.next_open(now)
        if later is None:
            groups = ", ".join(g.name for g in self.calendar_groups.all())
            return None, f"no business time within {HORIZON_DAYS} days in calendar groups {groups}"
        return later, f"outside business time: next timeout moved to {iso_utc(later)}"

    def task_run(self) -> TaskRun:
        """What the action of this claimed task is given (its interfaces prefetched)."""
        return TaskRun(
            task_id=self.id,
            task_name=self.name,
            subtype=self.subtype,
            interface_codes=tuple(sorted(interface.code for interface in self.interfaces.all())),
            interval_start=self.interval_start(),
            interval_end=self.claimed_at,
        )

    @staticmethod
    def retry_delay(failures: int) -> dt.timedelta:
        """Backoff after the ``failures``-th failure in a row: base, 2 x base, 4 x base ... capped."""
        seconds = settings.SCHEDULER_RETRY_BASE_SECONDS * 2 ** max(failures - 1, 0)
        return dt.timedelta(seconds=min(seconds, settings.SCHEDULER_RETRY_MAX_SECONDS))

    @staticmethod
    def interface_errors(subtype: str, interfaces) -> list[str]:
        """Why these interfaces do not suit the subtype (empty when they do)."""
        wanted = SUBTYPE_DIRECTION.get(subtype)
        if wanted is None:
            return []
        return [
            f"{interface.code} is {interface.direction}; a {subtype} task watches {wanted} interfaces"
            for interface in interfaces
            if interface.direction != wanted
        ]

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "subtype": self.subtype,
            "interfaces": sorted(i.code for i in self.interfaces.all()),
            "calendar_groups": sorted(g.name for g in self.calendar_groups.all()),
            "interval_seconds": self.interval_seconds,
            "enabled": self.enabled,
            "state": self.state,
            "next_timeout_at": iso_utc(self.next_timeout_at),
            "last_interval_end_at": iso_utc(self.last_interval_end_at),
            "resume_at": iso_utc(self.resume_at),
        }


class TaskTransition(models.Model):
    """One move of a task's state machine: from, to, the event, when, who and why."""

    task = models.ForeignKey(SchedulerTask, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=12, choices=TaskState.choices)
    to_state = models.CharField(max_length=12, choices=TaskState.choices)
    event = models.CharField(max_length=32, choices=TaskEvent.choices)
    at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "id"], name="task_transition_task_idx")]

    def __str__(self) -> str:
        return f"{self.task_id}: {self.from_state} -> {self.to_state} ({self.event})"
