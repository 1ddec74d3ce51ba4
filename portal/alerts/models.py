"""Alert episodes, the channels that reach people, the rules between them (DOMAIN §7), and tallies for /metrics."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from portal import clock


class AlertKind(models.TextChoices):
    BATCH_AT_RISK = "BATCH_AT_RISK"
    BATCH_OPEN = "BATCH_OPEN"
    BATCH_DELAYED = "BATCH_DELAYED"
    JOB_ERROR = "JOB_ERROR"
    JOB_ZOMBIE = "JOB_ZOMBIE"
    TASK_ERROR = "TASK_ERROR"
    OUTBOX_FAILED = "OUTBOX_FAILED"
    OUTBOX_STALLED = "OUTBOX_STALLED"
    HEARTBEAT_STALE = "HEARTBEAT_STALE"
    DISPATCHER_STALE = "DISPATCHER_STALE"
    CUTOFF_AT_RISK = "CUTOFF_AT_RISK"
    CUTOFF_MISSED = "CUTOFF_MISSED"


class AlertState(models.TextChoices):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class AlertEvent(models.TextChoices):
    OPENED = "opened"
    REPEATED = "repeated"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    TEST = "test"


class AlertEpisodeQuerySet(models.QuerySet):
    def unresolved(self) -> AlertEpisodeQuerySet:
        return self.exclude(state=AlertState.RESOLVED)

    def review_due(self, now: dt.datetime) -> AlertEpisodeQuerySet:
        return self.unresolved().filter(review_at__lte=now)


class AlertEpisode(models.Model):
    """One alert, from the moment its condition began until it ended.

    ``sequence`` counts the changes made to it (opened, repeats, escalations,
    acknowledgements, the end of one, resolved): every writer compares and sets it,
    so two reviewers or two clusters never both act on one state, and it numbers the
    notifications of each change in their outbox dedupe keys. ``marks`` keeps, per
    rule, when its channels were last told and whether it escalated.
    """

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    subject = models.CharField(max_length=200, help_text='what it is about, e.g. "batch:acme/GL_DAILY", "job:123"')
    tenant = models.CharField(max_length=64, blank=True, default="")
    config = models.CharField(max_length=200, blank=True, default="")
    spool = models.CharField(max_length=100, blank=True, default="")
    interface = models.CharField(max_length=500, blank=True, default="", help_text="interface codes, comma separated")
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.OPEN)
    summary = models.CharField(max_length=1000)
    opened_at = models.DateTimeField(default=clock.now)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    acknowledged_by_name = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_reason = models.TextField(blank=True)
    acknowledged_until = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    sequence = models.PositiveIntegerField(default=0, editable=False)
    marks = models.JSONField(default=dict, blank=True, editable=False)
    # When a repeat, an escalation or the end of an acknowledgement is next due; NULL: none is.
    review_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AlertEpisodeQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"], condition=~models.Q(state="RESOLVED"), name="alert_one_open_episode"
            ),
        ]
        indexes = [
            models.Index(fields=["review_at"], name="alert_review_idx", condition=models.Q(review_at__isnull=False)),
            models.Index(fields=["state", "kind"], name="alert_state_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.state})"

    @property
    def is_resolved(self) -> bool:
        return self.state == AlertState.RESOLVED

    def acknowledgement_ended(self, now: dt.datetime) -> bool:
        return self.state == AlertState.ACKNOWLEDGED and self.acknowledged_until is not None and now >= self.acknowledged_until

    def mark(self, rule_id: int) -> dict:
        return dict(self.marks.get(str(rule_id), {}))

    def last_told(self, rule_id: int) -> dt.datetime:
        """When the rule's channels last heard that it is open: the opening, or the last repeat."""
        told = self.mark(rule_id).get("told_at")
        return dt.datetime.fromisoformat(told) if told else self.opened_at

    def escalated(self, rule_id: int) -> bool:
        return bool(self.mark(rule_id).get("escalated_at"))

    def next_review(self, rules: list[AlertRule]) -> dt.datetime | None:
        """The next instant at which time alone asks for a notice (a repeat, an escalation) or ends an acknowledgement."""
        if self.state == AlertState.ACKNOWLEDGED:
            return self.acknowledged_until
        if self.state != AlertState.OPEN:
            return None
        instants = []
        for rule in rules:
            if rule.repeat_minutes:
                instants.append(self.last_told(rule.id) + dt.timedelta(minutes=rule.repeat_minutes))
            if rule.escalate_after_minutes and not self.escalated(rule.id):
                instants.append(self.opened_at + dt.timedelta(minutes=rule.escalate_after_minutes))
        return min(instants, default=None)


class ChannelKind(models.TextChoices):
    EMAIL = "email"
    WEBHOOK = "webhook"
    APPRISE = "apprise"
    CONSOLE = "console"


class NotificationChannel(models.Model):
    """Where people are told: e-mail addresses, a webhook, any Apprise URL, or the local console log."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    target = models.CharField(max_length=2000, blank=True, help_text="addresses, URL or Apprise URL, by kind")
    secret = models.CharField(max_length=500, blank=True, help_text="write-only: signs webhook bodies")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)


class AlertRule(models.Model):
    """Which episodes reach which channels, how often again, and whom to escalate to."""

    name = models.CharField(max_length=100, unique=True)
    channels = models.ManyToManyField(NotificationChannel, related_name="rules")
    kinds = models.JSONField(default=list, blank=True, help_text="alert kinds; empty: all")
    tenant = models.CharField(max_length=64, blank=True)
    config = models.CharField(max_length=200, blank=True)
    spool = models.CharField(max_length=100, blank=True)
    interface = models.CharField(max_length=64, blank=True)
    repeat_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="notify again while OPEN; empty: never"
    )
    escalate_after_minutes = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    escalate_to = models.ManyToManyField(NotificationChannel, related_name="escalating_rules", blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)

    def matches(self, episode: AlertEpisode) -> bool:
        if self.kinds and episode.kind not in self.kinds:
            return False
        for name in ("tenant", "config", "spool"):
            wanted = getattr(self, name)
            if wanted and getattr(episode, name) != wanted:
                return False
        return not self.interface or self.interface in (episode.interface or "").split(",")


class Tally(models.Model):
    """A figure of /metrics that must never go down (a counter, a histogram bucket).

    Kept apart from the rows it counts, which retention prunes (DOMAIN §9).
    """

    name = models.CharField(max_length=64)
    key = models.CharField(max_length=300, help_text="the label values, '|' separated")
    value = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "key"], name="tally_name_key_uniq")]

    def __str__(self) -> str:
        return f"{self.name}[{self.key}] = {self.value}"
