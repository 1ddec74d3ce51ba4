"""Batch monitor models (DOMAIN §1): configs, their sources, windows, files and alert states.

Imported by ``monitoring.models`` so that Django registers them in the ``monitoring`` app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from portal import clock

# Writes that may change a config's alert state set its alert's ``due_at`` to this
# instant: earlier than any clock a replay could set, so the next scan looks at it
# whatever ``--now`` it runs with.
ALERT_DUE_NOW = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Ten years: longer windows or waits are typing errors, and they would carry window
# ends and SLAs past the last instant Python can represent.
MAX_HOURS = 10 * 366 * 24
# Arrivals must leave room for the windows they open (each at most MAX_HOURS long).
LATEST_EXTRACT = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


class WindowStatus(models.TextChoices):
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class TriggerStatus(models.TextChoices):
    NONE = "NONE"
    SENT = "SENT"


class ArrivalException(models.TextChoices):
    DUPLICATE = "DUPLICATE"
    PREVIOUS_WINDOW = "PREVIOUS_WINDOW"
    FUTURE_WINDOW = "FUTURE_WINDOW"


class AlertState(models.TextChoices):
    NONE = "NONE"
    AT_RISK = "AT_RISK"
    OPEN = "OPEN"
    DELAYED = "DELAYED"


class BatchConfig(models.Model):
    """One kind of batch: which sources each window must receive, and by when."""

    tenant = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    window_hours = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_HOURS)], help_text="length of one window"
    )
    max_wait_hours = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(MAX_HOURS)], help_text="grace after the window end (the SLA)"
    )
    target_app = models.CharField(max_length=200, help_text="the application a completed window triggers")
    target_workflow = models.CharField(max_length=200)
    active = models.BooleanField(default=True, help_text="inactive configs are still fed but raise no alerts")
    exception_check = models.BooleanField(default=True, help_text="detect DELAYED batches (past their SLA)")
    realert_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="repeat an alert after this long (empty: never)"
    )
    interface = models.ForeignKey(
        "monitoring.MonitoredInterface", null=True, blank=True, on_delete=models.PROTECT, related_name="batch_configs"
    )
    risk_tolerance_minutes = models.PositiveIntegerField(
        default=10, help_text="AT_RISK when a source is this late on its usual arrival (DOMAIN §8)"
    )
    # Learned when a window completes (monitoring.batches.history): source -> seconds after the window
    # start by which it usually arrives; empty until 5 windows have completed.
    usual_arrivals = models.JSONField(default=dict, blank=True, editable=False)
    # Maintained by the placement on every window opened: the scan and the arrivals
    # read one row instead of looking for the newest window of a long history.
    latest_window = models.OneToOneField(
        "monitoring.BatchWindow", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="batchconfig_tenant_name_uniq")]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant})"

    @property
    def window_length(self) -> dt.timedelta:
        return dt.timedelta(hours=self.window_hours)

    def next_window_range(self, latest: BatchWindow | None, extract: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The window an arrival at ``extract`` would open: the first one, or the one after ``latest``."""
        start = extract if latest is None else latest.window_end
        return start, start + self.window_length

    def current_window(self, latest: BatchWindow | None, extract: dt.datetime) -> tuple[BatchWindow | None, dt.datetime, dt.datetime]:
        """DOMAIN §1's current window: the latest while it is OPEN, else the next one (None until an arrival opens it)."""
        if latest is not None and not latest.is_finished:
            return latest, latest.window_start, latest.window_end
        start, end = self.next_window_range(latest, extract)
        return None, start, end

    def usual_arrival(self, latest: BatchWindow, source: str) -> dt.datetime | None:
        """When ``source`` usually arrives in ``latest`` (learned from history; None: not enough history)."""
        seconds = self.usual_arrivals.get(source)
        return None if seconds is None else latest.window_start + dt.timedelta(seconds=seconds)

    def risk_instants(self, latest: BatchWindow | None, missing: Iterable[str]) -> dict[str, dt.datetime]:
        """DOMAIN §8: each missing source of the OPEN latest window with a usual arrival, and when it is late on it."""
        if latest is None or latest.status != WindowStatus.OPEN:
            return {}
        tolerance = dt.timedelta(minutes=self.risk_tolerance_minutes)
        usual = {name: self.usual_arrival(latest, name) for name in missing}
        return {name: at + tolerance for name, at in usual.items() if at is not None}

    def late_sources(self, now: dt.datetime, latest: BatchWindow | None, missing: Iterable[str]) -> list[str]:
        return sorted(name for name, at in self.risk_instants(latest, missing).items() if at <= now)

    def alert_state_at(self, now: dt.datetime, latest: BatchWindow | None, missing: Iterable[str] = ()) -> str:
        """DOMAIN §1 and §8: AT_RISK, OPEN, DELAYED or NONE, from the latest window and its missing sources."""
        if not self.active or latest is None:
            return AlertState.NONE
        past_sla = self.exception_check and now >= latest.sla
        if latest.status == WindowStatus.OPEN:
            if now < latest.window_end:
                return AlertState.AT_RISK if self.late_sources(now, latest, missing) else AlertState.NONE
            if not latest.is_missing_sources:
                return AlertState.NONE
            return AlertState.DELAYED if past_sla else AlertState.OPEN
        return AlertState.DELAYED if past_sla else AlertState.NONE

    def alert_changes_after(self, now: dt.datetime, latest: BatchWindow | None, missing: Iterable[str] = ()) -> dt.datetime | None:
        """The next instant at which time alone can change ``alert_state_at`` (None: only a write can)."""
        if not self.active or latest is None:
            return None
        instants = []
        if latest.status == WindowStatus.OPEN and now < latest.window_end:
            instants.append(latest.window_end)
            instants += [at for at in self.risk_instants(latest, missing).values() if now < at < latest.window_end]
        if self.exception_check and now < latest.sla:
            instants.append(latest.sla)
        return min(instants, default=None)


class BatchSource(models.Model):
    """A file or table each window of a config must receive; its name is unique within the tenant."""

    config = models.ForeignKey(BatchConfig, on_delete=models.CASCADE, related_name="sources")
    # A copy of the config's tenant, so that the database enforces one config per (tenant, source).
    tenant = models.SlugField(max_length=64, editable=False)
    name = models.CharField(max_length=200)
    # The place in the config's list as it was given: the API answers the list in that order.
    position = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["config_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="batchsource_tenant_name_uniq")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.tenant = self.config.tenant
        super().save(*args, **kwargs)


class BatchWindow(models.Model):
    """One batch: the sources a config received for one period."""

    # No index of its own: the unique (config, window_start) index serves lookups by config.
    config = models.ForeignKey(BatchConfig, on_delete=models.PROTECT, related_name="windows", db_index=False)
    status = models.CharField(max_length=10, choices=WindowStatus.choices, default=WindowStatus.OPEN)
    extract_timestamp = models.DateTimeField(help_text="the extract of the arrival that opened the window")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    expected_count = models.PositiveIntegerField()
    received_count = models.PositiveIntegerField(default=0)
    max_wait_hours = models.PositiveIntegerField(help_text="copied from the config when the window opened")
    trigger_status = models.CharField(max_length=4, choices=TriggerStatus.choices, default=TriggerStatus.NONE)
    opened_at = models.DateTimeField(default=clock.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failed_by = models.CharField(max_length=150, blank=True)
    fail_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-window_start", "-id"]
        constraints = [
            # Two arrivals at once can never open the same period twice.
            models.UniqueConstraint(fields=["config", "window_start"], name="batchwindow_config_start_uniq"),
        ]
        indexes = [
            models.Index(fields=["status", "window_end"], name="batchwindow_open_idx", condition=models.Q(status="OPEN")),
        ]

    def __str__(self) -> str:
        return f"{self.config.name if self.config_id else '?'} {self.window_start:%Y-%m-%d %H:%M}-{self.window_end:%Y-%m-%d %H:%M}"

    @staticmethod
    def sla_after(window_end: dt.datetime, max_wait_hours: int) -> dt.datetime:
        """The SLA rule (DOMAIN §1): window end plus the max wait; also for a window no arrival has opened yet."""
        return window_end + dt.timedelta(hours=max_wait_hours)

    @property
    def sla(self) -> dt.datetime:
        """Window end plus the max wait copied at creation."""
        return self.sla_after(self.window_end, self.max_wait_hours)

    @property
    def is_finished(self) -> bool:
        """COMPLETED or FAILED: held arrivals behind it may move on."""
        return self.status != WindowStatus.OPEN

    @property
    def is_missing_sources(self) -> bool:
        return self.received_count < self.expected_count

    def contains(self, instant: dt.datetime) -> bool:
        return self.window_start <= instant < self.window_end


class BatchFile(models.Model):
    """One arrival: a received source, placed in a window, held for a later one, or refused with a reason."""

    config = models.ForeignKey(BatchConfig, on_delete=models.PROTECT, related_name="files")
    source = models.ForeignKey(BatchSource, null=True, on_delete=models.SET_NULL, related_name="files")
    # Kept by name too: a source removed from its config later still names its files.
    source_name = models.CharField(max_length=200)
    window = models.ForeignKey(BatchWindow, null=True, blank=True, on_delete=models.PROTECT, related_name="files")
    extract_timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=clock.now)
    payload = models.JSONField(default=dict, help_text="the arrival as it was posted")
    exception = models.CharField(
        "exception reason", max_length=16, choices=ArrivalException.choices, blank=True, default=""
    )
    held = models.BooleanField(default=False, help_text="a FUTURE_WINDOW arrival waiting for the windows before it")
    counted = models.BooleanField(default=False, help_text="counts as its window's copy of the source")
    applied_at = models.DateTimeField(null=True, blank=True, help_text="when a held arrival was placed")

    class Meta:
        ordering = ["id"]
        constraints = [
            # A source counts once per window, whichever request delivered it first.
            models.UniqueConstraint(
                fields=["window", "source_name"], condition=models.Q(counted=True), name="batchfile_counted_uniq"
            ),
        ]
        indexes = [
            models.Index(
                fields=["config", "extract_timestamp", "id"], condition=models.Q(held=True), name="batchfile_held_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_name} @ {self.extract_timestamp:%Y-%m-%d %H:%M:%S}"


class HeldArrival(BatchFile):
    """Held FUTURE_WINDOW arrivals, for the admin."""

    class Meta:
        proxy = True
        verbose_name = "held arrival"


class BatchAlert(models.Model):
    """A config's alert state: what the scan last told the control queue about it.

    The scan claims a due row with a conditional UPDATE (``due_at <= now``) and leaves
    it not due, so two scans at once evaluate it once. ``transition`` counts (state,
    window) changes and keeps outbox dedupe keys distinct when a config comes back to
    a pair it had before (after a deactivation, say).
    """

    config = models.OneToOneField(BatchConfig, primary_key=True, on_delete=models.CASCADE, related_name="alert")
    state = models.CharField(max_length=8, choices=AlertState.choices, default=AlertState.NONE)
    window = models.ForeignKey(BatchWindow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sequence = models.PositiveIntegerField(default=0, help_text="re-alert number within the state (retryCount)")
    transition = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # When the scan must look at this config next; NULL: only a write can change its state.
    due_at = models.DateTimeField(null=True, blank=True, default=ALERT_DUE_NOW)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["due_at"], name="batchalert_due_idx", condition=models.Q(due_at__isnull=False)),
            # The monitor and the metrics read the few alerting configs among many.
            models.Index(fields=["state"], name="batchalert_alerting_idx", condition=~models.Q(state="NONE")),
        ]

    def __str__(self) -> str:
        return f"{self.config_id}: {self.state}"

    @property
    def is_alerting(self) -> bool:
        return self.state != AlertState.NONE

    def realert_at(self, realert_minutes: int | None) -> dt.datetime | None:
        if not self.is_alerting or not realert_minutes or self.last_message_at is None:
            return None
        return self.last_message_at + dt.timedelta(minutes=realert_minutes)

    def next_scan_at(self, now: dt.datetime, missing: list | None = None) -> dt.datetime | None:
        """When the scan must look at this config again: its state may change (a missing source may put it AT_RISK), or
        its alert repeats (None: only a write)."""
        config = self.config
        instants = (config.alert_changes_after(now, config.latest_window, missing or []), self.realert_at(config.realert_minutes))
        return min((t for t in instants if t), default=None)

