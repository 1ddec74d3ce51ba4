"""The parts every engine shares: the outbox, the audit log and the heartbeat."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from django.conf import settings
from django.db import models

from portal import clock


class MessageStatus(models.TextChoices):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    INVALID = "INVALID"


class OutboundMessageQuerySet(models.QuerySet):
    def pending(self) -> OutboundMessageQuerySet:
        return self.filter(status=MessageStatus.PENDING)


class OutboundMessage(models.Model):
    """One message on its way to the control queue (the outbox row).

    Written in the same transaction as the change that caused it; the
    publisher sends it later, so a crash between the two loses nothing.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=64)
    # Messages of one lane leave in the order they were written (their ids): the kind, or
    # per receiver for kinds whose receivers fail apart (OUTBOX_LANE_FIELD_BY_KIND).
    lane = models.CharField(max_length=100)
    dedupe_key = models.CharField(max_length=255)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=clock.now)
    next_attempt_at = models.DateTimeField(default=clock.now, help_text="after a failure: when its lane tries again")
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    queue_message_id = models.CharField(max_length=128, blank=True)

    objects = OutboundMessageQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        # A message marked SENT is written anew in every index that does not leave it (the status is in
        # their conditions): a constraint and an index of Meta carry no second, LIKE-pattern index on
        # PostgreSQL as unique=True and db_index=True do; no query here uses one.
        constraints = [models.UniqueConstraint(fields=["dedupe_key"], name="outbox_dedupe_key_uniq")]
        indexes = [
            models.Index(fields=["kind"], name="outbox_kind_idx"),
            # /healthz, the console and the publisher read the pending, failed and invalid few among millions
            # sent; a message marked SENT leaves these indexes instead of entering one more.
            models.Index(fields=["status"], name="outbox_problem_idx", condition=models.Q(status__in=["FAILED", "INVALID"])),
            models.Index(fields=["id"], name="outbox_pending_idx", condition=models.Q(status="PENDING")),
            models.Index(fields=["lane", "id"], name="outbox_lane_pending_idx", condition=models.Q(status="PENDING")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.dedupe_key} ({self.status})"

    @property
    def body(self) -> str:
        """The exact text the queue receives: the payload as compact JSON."""
        return message_body(self.payload)


def message_body(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


class OutboxLaneQuerySet(models.QuerySet):
    def ready(self, now: dt.datetime) -> OutboxLaneQuerySet:
        """Neither held by a publisher within its lease nor waiting after a failure.

        A lease or a wait further ahead than twice the longest one was set by a process
        whose clock is far ahead (a ``--now`` run, DOMAIN §5): it does not hold the live
        publishers. (Twice: hosts' clocks and two publishers' instants differ a little.)
        """
        lease = dt.timedelta(seconds=2 * settings.OUTBOX_LEASE_SECONDS)
        wait = dt.timedelta(seconds=2 * settings.OUTBOX_BACKOFF_MAX_SECONDS)
        return self.filter(
            models.Q(lease_until__isnull=True) | models.Q(lease_until__lt=now) | models.Q(lease_until__gt=now + lease),
            models.Q(next_attempt_at__isnull=True) | models.Q(next_attempt_at__lte=now) | models.Q(next_attempt_at__gt=now + wait),
        )


class OutboxLane(models.Model):
    """One lane of the outbox: its messages leave one publisher at a time, oldest first.

    A publisher claims the lane (a conditional UPDATE), sends its oldest pending
    messages and releases it. A batch that fails makes the whole lane wait (2, 4, 8 ...
    s, capped), so no younger message overtakes an older one, also after an outage.
    """

    name = models.CharField(max_length=100, unique=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="failed batches in a row")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="set after a failed batch")
    last_error = models.TextField(blank=True)

    objects = OutboxLaneQuerySet.as_manager()

    def __str__(self) -> str:
        return f"outbox lane {self.name}"

    @staticmethod
    def backoff_after(failures: int, now: dt.datetime, cap_seconds: int) -> dt.datetime:
        """When to try again after the ``failures``-th failed batch in a row: 2, 4, 8 ... s, capped."""
        seconds = min(2 ** min(max(failures, 1), 30), cap_seconds)
        return now + dt.timedelta(seconds=seconds)


class AuditEntry(models.Model):
    """Who did what to which object, with the state before and after, and why."""

    at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.object_repr}"


class Heartbeat(models.Model):
    """The single row holding the last tick of the portal's heartbeat."""

    last_tick_at = models.DateTimeField(null=True, blank=True)
    last_event = models.CharField(max_length=32, blank=True)
    ticks = models.PositiveBigIntegerField(default=0)

    SINGLETON_ID = 1

    def __str__(self) -> str:
        return f"heartbeat at {self.last_tick_at}"

    @classmethod
    def load(cls) -> Heartbeat:
        obj, _ = cls.objects.get_or_create(id=cls.SINGLETON_ID)
        return obj

    def is_stale(self, now: dt.datetime, interval_seconds: int) -> bool:
        """Older than three intervals: the portal has been blind."""
        if self.last_tick_at is None:
            return False
        return now - self.last_tick_at > dt.timedelta(seconds=3 * interval_seconds)


class QueueHost(models.Model):
    """The host that writes a one-host queue backend (the local file): DOMAIN §9 refuses a second host."""

    backend = models.CharField(max_length=32, unique=True)
    host = models.CharField(max_length=255)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.backend} queue on {self.host}"
class LoginFailures(models.Model):
    """Wrong passwords of one account or from one address within the current window (DOMAIN §4).

    A row, not a per-process counter: gunicorn's workers and every web host see the same count.
    """

    key = models.CharField(max_length=200, unique=True, help_text="account:<username> or address:<ip>")
    window_started_at = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "login failures"

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} since {self.window_started_at:%H:%M:%S}"
