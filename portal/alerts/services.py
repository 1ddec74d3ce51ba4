"""Alert episodes (DOMAIN §7): opened and resolved where a condition changes, reviewed on every tick.

Every notification is an outbox message of kind NOTIFICATION, written in the
transaction of the change that caused it, one per channel, with the dedupe key
``alert:<episode>:<channel>:<event>:<sequence>``. Every change of an episode is
a compare-and-set of its ``sequence``: of two reviewers, two clusters or a
reviewer and an operator, one acts and the other finds nothing left to do.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from portal import clock, roles
from portal.alerts.models import AlertEpisode, AlertEvent, AlertRule, AlertState, NotificationChannel
from portal.lib.bulk import rows_insert
from portal.lib.times import iso_utc
from portal.services import PendingMessage, audit_record, outbox_enqueue_bulk

log = logging.getLogger(__name__)

NOTIFICATION = "NOTIFICATION"
CHANGE_TRIES = 5


class AlertConflict(Exception):
    """An acknowledgement of an episode that has ended: the API answers 409 with its state."""

    def __init__(self, episode: AlertEpisode) -> None:
        self.state = episode.state
        super().__init__(f"alert {episode.id} is {episode.state}: only an open alert can be acknowledged")


# --- notifications -----------------------------------------------------------------------


def alert_url(episode_id: int | None) -> str:
    base = f"{settings.PORTAL_URL.rstrip('/')}/monitor/"
    return f"{base}?alert={episode_id}" if episode_id else base


def notification_body(*, episode: AlertEpisode, event: str, at: dt.datetime) -> dict:
    """What a webhook receives, field for field (DOMAIN §7); the other channels word the same facts."""
    return {
        "alert_id": episode.id,
        "kind": episode.kind,
        "event": event,
        "state": episode.state,
        "subject": episode.subject,
        "summary": episode.summary,
        "opened_at": iso_utc(episode.opened_at),
        "at": iso_utc(at),
        "url": alert_url(episode.id),
    }


def notification(*, channel: NotificationChannel, event: str, dedupe_key: str, sequence: int, body: dict) -> PendingMessage:
    # The channel is named, never its target or secret: the outbox is readable through the API.
    payload = {
        "channel_id": channel.id,
        "channel": channel.name,
        "channel_kind": channel.kind,
        "event": event,
        "sequence": sequence,
        "body": body,
    }
    return PendingMessage(NOTIFICATION, dedupe_key, payload)


def _notify(episode: AlertEpisode, event: str, channels: Iterable[NotificationChannel], at: dt.datetime) -> int:
    messages = _notices(episode, event, channels, at)
    outbox_enqueue_bulk(messages=messages)
    return len(messages)


def _notices(episode: AlertEpisode, event: str, channels: Iterable[NotificationChannel], at: dt.datetime) -> list[PendingMessage]:
    body = notification_body(episode=episode, event=event, at=at)
    unique = {channel.id: channel for channel in channels if channel.enabled}
    return [
        notification(
            channel=channel,
            event=event,
            dedupe_key=f"alert:{episode.id}:{channel.id}:{event}:{episode.sequence}",
            sequence=episode.sequence,
            body=body,
        )
        for channel in sorted(unique.values(), key=lambda c: c.name)
    ]


# Set by ``alert_rules_read_once``: the rules read by the first episode opened or ended in the block.
_RULES_IN_HAND: ContextVar[list[list[AlertRule]] | None] = ContextVar("alert_rules_in_hand", default=None)


def alert_rules() -> list[AlertRule]:
    in_hand = _RULES_IN_HAND.get()
    if in_hand:
        return in_hand[0]
    rules = list(AlertRule.objects.prefetch_related("channels", "escalate_to").order_by("id"))
    if in_hand is not None:
        in_hand.append(rules)
    return rules


@contextmanager
def alert_rules_read_once() -> Iterator[None]:
    """Within the block the alert rules are read at most once: a bulk tick moving many tasks into or
    out of ERROR, or a sweep finding many Zombies, opens or ends many episodes with one reading."""
    token = _RULES_IN_HAND.set([])
    try:
        yield
    finally:
        _RULES_IN_HAND.reset(token)


def _matching(episode: AlertEpisode, rules: list[AlertRule] | None = None) -> list[AlertRule]:
    return [rule for rule in (alert_rules() if rules is None else rules) if rule.matches(episode)]


def _audience(episode: AlertEpisode, rules: list[AlertRule]) -> list[NotificationChannel]:
    """Who hears of an acknowledgement or the end: the rules' channels, and those escalated to."""
    channels = []
    for rule in rules:
        channels += rule.channels.all()
        if episode.escalated(rule.id):
            channels += rule.escalate_to.all()
    return channels


def _change(episode: AlertEpisode, **fields) -> bool:
    """Compare-and-set on ``sequence``: True when this caller made the change."""
    changed = AlertEpisode.objects.filter(id=episode.id, sequence=episode.sequence).update(
        sequence=episode.sequence + 1, **fields
    )
    if changed:
        episode.sequence += 1
        for name, value in fields.items():
            setattr(episode, name, value)
    return bool(changed)


# --- opened and resolved where the condition changes ------------------------------------------


def alert_open(
    *,
    kind: str,
    subject: str,
    summary: str,
    tenant: str = "",
    config: str = "",
    spool: str = "",
    interface: str = "",
) -> AlertEpisode:
    """Open the episode of (kind, subject), or return the one already open (its summary brought up to date).

    Runs in the caller's transaction, so the episode and its ``opened``
    notifications commit with the change that caused them.
    """
    summary = summary[:1000]
    with transaction.atomic():
        current = AlertEpisode.objects.unresolved().filter(kind=kind, subject=subject).first()
        if current is not None:
            if current.summary != summary:
                AlertEpisode.objects.filter(id=current.id).update(summary=summary)
                current.summary = summary
            return current
        now = clock.now()
        episode = AlertEpisode(
            kind=kind, subject=subject, summary=summary, opened_at=now,
            tenant=tenant, config=config, spool=spool, interface=interface,
        )
        rules = _matching(episode)
        episode.review_at = episode.next_review(rules)
        try:
            with transaction.atomic():
                episode.save()
        except IntegrityError:  # another process opened it between our read and our write
            return AlertEpisode.objects.unresolved().get(kind=kind, subject=subject)
        sent = _notify(episode, AlertEvent.OPENED, [c for rule in rules for c in rule.channels.all()], now)
        log.warning("alert %s opened: %s %s: %s (%d notification(s))", episode.id, kind, subject, summary, sent)
    return episode


def alerts_open_bulk(*, episodes: list[AlertEpisode]) -> None:
    """``alert_open`` for many unsaved ``episodes`` at once (a scan that finds a thousand batches late):
    one read of those already open, one insert, one outbox write for their ``opened`` notifications.

    Runs in the caller's transaction. An episode that another process opened between
    our read and our insert makes the batch go through ``alert_open`` one by one.
    """
    if not episodes:
        return
    now = clock.now()
    wanted = {(e.kind, e.subject): e for e in episodes}
    already = AlertEpisode.objects.unresolved().filter(kind__in={k for k, _ in wanted}, subject__in={s for _, s in wanted})
    current = {(e.kind, e.subject): e for e in already.only("id", "kind", "subject", "summary")}
    new = []
    for key, episode in wanted.items():
        episode.summary = episode.summary[:1000]
        if key not in current:
            episode.opened_at = now
            new.append(episode)
        elif current[key].summary != episode.summary:
            AlertEpisode.objects.filter(id=current[key].id).update(summary=episode.summary)
    rules = alert_rules()
    matching = [_matching(episode, rules) for episode in new]
    for episode, its_rules in zip(new, matching, strict=True):
        episode.review_at = episode.next_review(its_rules)
    try:
        with transaction.atomic():
            rows_insert(new)
    except IntegrityError:
        for e in new:
            alert_open(kind=e.kind, subject=e.subject, summary=e.summary, tenant=e.tenant, config=e.config, spool=e.spool, interface=e.interface)
        return
    messages = []
    for episode, its_rules in zip(new, matching, strict=True):
        notices = _notices(episode, AlertEvent.OPENED, [c for rule in its_rules for c in rule.channels.all()], now)
        log.warning("alert %s opened: %s %s: %s (%d notification(s))", episode.id, episode.kind, episode.subject, episode.summary, len(notices))
        messages += notices
    outbox_enqueue_bulk(messages=messages)


def alert_resolve(*, kind: str, subject: str) -> AlertEpisode | None:
    """End the open episode of (kind, subject), telling its audience; None when none was open."""
    if not AlertEpisode.objects.unresolved().filter(kind=kind, subject=subject).exists():
        return None  # the watchers ask often: no transaction (no SQLite write lock) when nothing is open
    with transaction.atomic():
        for _ in range(CHANGE_TRIES):
            episode = AlertEpisode.objects.unresolved().filter(kind=kind, subject=subject).first()
            if episode is None:
                return None
            now = clock.now()
            if _change(episode, state=AlertState.RESOLVED, resolved_at=now, review_at=None):
                sent = _notify(episode, AlertEvent.RESOLVED, _audience(episode, _matching(episode)), now)
                log.info("alert %s resolved: %s %s (%d notification(s))", episode.id, kind, subject, sent)
                return episode
    return None


def alert_follow(*, kind: str, subject: str, active: bool, summary: str = "", **filters) -> None:
    """Open or resolve by a condition's current truth: for watchers that look again and again."""
    if active:
        alert_open(kind=kind, subject=subject, summary=summary, **filters)
    else:
        alert_resolve(kind=kind, subject=subject)


# --- acknowledgement ---------------------------------------------------------------------------


def alert_acknowledge(*, actor, alert: AlertEpisode | int, reason: str, until: dt.datetime | None = None) -> AlertEpisode:
    """An Operator takes it on: no repeats and no escalation until ``until`` (if given), audited."""
    roles.require(actor, roles.OPERATORS, "acknowledging an alert")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "an acknowledgement needs a reason"})
    now = clock.now()
    if until is not None and until <= now:
        raise ValidationError({"until": f"{iso_utc(until)} must be later than now ({iso_utc(now)})"})
    alert_id = alert.id if isinstance(alert, AlertEpisode) else alert
    with transaction.atomic():
        for _ in range(CHANGE_TRIES):
            episode = AlertEpisode.objects.get(id=alert_id)
            if episode.is_resolved:
                raise AlertConflict(episode)
            before = alert_snapshot(episode)
            if _change(
                episode,
                state=AlertState.ACKNOWLEDGED,
                acknowledged_by=roles.acting_user(actor),
                acknowledged_by_name=roles.actor_label(actor),
                acknowledged_at=now,
                acknowledge_reason=reason,
                acknowledged_until=until,
                review_at=until,
            ):
                _notify(episode, AlertEvent.ACKNOWLEDGED, _audience(episode, _matching(episode)), now)
                audit_record(actor=actor, action="alert.acknowledge", obj=episode, before=before, after=alert_snapshot(episode), reason=reason)
                return episode
    raise AlertConflict(AlertEpisode.objects.get(id=alert_id))


def alert_snapshot(episode: AlertEpisode) -> dict:
    return {
        "state": episode.state,
        "acknowledged_by": episode.acknowledged_by_name,
        "acknowledged_at": iso_utc(episode.acknowledged_at),
        "acknowledged_until": iso_utc(episode.acknowledged_until),
        "reason": episode.acknowledge_reason,
    }


# --- repeats, escalations, the end of an acknowledgement (every tick) -------------------------------


def _review(episode: AlertEpisode, *, now: dt.datetime, rules: list[AlertRule]) -> int:
    matching = _matching(episode, rules)
    fields: dict = {}
    if episode.acknowledgement_ended(now):
        fields["state"] = AlertState.OPEN  # the acknowledgement's record stays; repeats and escalation resume
    repeat_to: list[NotificationChannel] = []
    escalate_to: list[NotificationChannel] = []
    marks = dict(episode.marks)
    if fields.get("state", episode.state) == AlertState.OPEN:
        for rule in matching:
            mark = episode.mark(rule.id)
            if rule.repeat_minutes and now >= episode.last_told(rule.id) + dt.timedelta(minutes=rule.repeat_minutes):
                mark["told_at"] = now.isoformat()
                mark["repeats"] = mark.get("repeats", 0) + 1
                repeat_to += rule.channels.all()
            if rule.escalate_after_minutes and not mark.get("escalated_at") and now >= episode.opened_at + dt.timedelta(
                minutes=rule.escalate_after_minutes
            ):
                mark["escalated_at"] = now.isoformat()
                escalate_to += rule.escalate_to.all()
            marks[str(rule.id)] = mark
    planned = AlertEpisode(state=fields.get("state", episode.state), opened_at=episode.opened_at, marks=marks,
                           acknowledged_until=episode.acknowledged_until)
    fields |= {"marks": marks, "review_at": planned.next_review(matching)}
    with transaction.atomic():
        if not _change(episode, **fields):
            return 0  # another reviewer (or an operator) changed it first
        return _notify(episode, AlertEvent.REPEATED, repeat_to, now) + _notify(episode, AlertEvent.ESCALATED, escalate_to, now)


def alerts_review(*, now: dt.datetime) -> int:
    """Repeats, escalations and acknowledgements that end, for every episode due at ``now``; returns notices queued."""
    rules: list[AlertRule] | None = None
    queued = 0
    for episode in AlertEpisode.objects.review_due(now).order_by("review_at", "id"):
        rules = alert_rules() if rules is None else rules
        queued += _review(episode, now=now, rules=rules)
    return queued


def alerts_review_again() -> int:
    """After a rule changed: every unresolved episode is looked at by the next review."""
    return AlertEpisode.objects.unresolved().update(review_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC), sequence=F("sequence") + 1)


# --- a test notification ----------------------------------------------------------------------------


def notification_channel_test(*, actor, channel: NotificationChannel, reason: str = "") -> PendingMessage:
    """A ``test`` event to one channel, through the outbox like every notification; audited."""
    roles.require(actor, roles.ADMINISTRATORS, "testing a notification channel")
    now = clock.now()
    body = {
        "alert_id": None,
        "kind": "TEST",
        "event": AlertEvent.TEST,
        "state": None,
        "subject": f"channel:{channel.name}",
        "summary": f"a test notification from the portal to channel {channel.name}, asked by {roles.actor_label(actor)}",
        "opened_at": None,
        "at": iso_utc(now),
        "url": alert_url(None),
    }
    message = notification(channel=channel, event=AlertEvent.TEST, dedupe_key=f"test:{channel.id}:{uuid.uuid4().hex}", sequence=0, body=body)
    with transaction.atomic():
        outbox_enqueue_bulk(messages=[message])
        audit_record(
            actor=actor, action="notification_channel.test", obj=channel, before={"enabled": channel.enabled},
            after={"queued": message.dedupe_key}, reason=reason,
        )
    return message
