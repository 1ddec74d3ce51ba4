"""Configuration of channels and rules (Administrators; audited): the services the API and the admin share."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction

from portal import clock, roles
from portal.alerts.channels import target_errors, target_shown
from portal.alerts.models import AlertKind, AlertRule, ChannelKind, NotificationChannel
from portal.alerts.services import alerts_review_again
from portal.services import audit_record

CHANNEL_FIELDS = ("name", "kind", "target", "secret", "enabled")
RULE_FIELDS = ("name", "kinds", "tenant", "config", "spool", "interface", "repeat_minutes", "escalate_after_minutes")


# --- channels --------------------------------------------------------------------------------


def channel_snapshot(channel: NotificationChannel) -> dict:
    """What the audit log keeps: the target masked, the secret only as "there is one"."""
    return {
        "name": channel.name,
        "kind": channel.kind,
        "target": target_shown(channel.kind, channel.target),
        "has_secret": bool(channel.secret),
        "enabled": channel.enabled,
    }


def notification_channel_check(channel: NotificationChannel) -> None:
    """Every problem of a channel, by field (ValidationError); the API and the admin forms say the same."""
    errors: dict[str, list[str]] = {}
    if not channel.name.strip():
        errors["name"] = ["a channel needs a name"]
    elif NotificationChannel.objects.filter(name=channel.name).exclude(id=channel.id).exists():
        errors["name"] = [f"a channel named {channel.name!r} exists already"]
    if channel.kind not in ChannelKind.values:
        errors["kind"] = [f"{channel.kind!r} is not a channel kind; one of {', '.join(ChannelKind.values)}"]
    elif problems := target_errors(channel.kind, channel.target):
        errors["target"] = problems
    if errors:
        raise ValidationError(errors)


def notification_channel_create(*, actor, name: str, kind: str, target: str = "", secret: str = "", enabled: bool = True) -> NotificationChannel:
    roles.require(actor, roles.ADMINISTRATORS, "creating a notification channel")
    now = clock.now()
    channel = NotificationChannel(name=name, kind=kind, target=target.strip(), secret=secret, enabled=enabled, created_at=now, updated_at=now)
    notification_channel_check(channel)
    with transaction.atomic():
        channel.save()
        audit_record(actor=actor, action="notification_channel.create", obj=channel, after=channel_snapshot(channel))
    return channel


def notification_channel_update(*, actor, channel: NotificationChannel, **fields) -> NotificationChannel:
    """Change the fields given; ``secret`` left out keeps the secret, an empty one removes it."""
    roles.require(actor, roles.ADMINISTRATORS, "changing a notification channel")
    with transaction.atomic():
        channel = NotificationChannel.objects.select_for_update().get(id=channel.id)
        before = channel_snapshot(channel)
        shown = target_shown(channel.kind, channel.target)
        for name in CHANNEL_FIELDS:
            if name in fields and fields[name] is not None:
                setattr(channel, name, fields[name].strip() if name == "target" else fields[name])
        if channel.target == shown and channel.kind == before["kind"]:
            # The masked target sent back as it was shown (an edit form, a GET then PUT): the real one stays.
            channel.target = NotificationChannel.objects.values_list("target", flat=True).get(id=channel.id)
        notification_channel_check(channel)
        channel.updated_at = clock.now()
        channel.save()
        audit_record(actor=actor, action="notification_channel.update", obj=channel, before=before, after=channel_snapshot(channel))
    return channel


def notification_channel_delete(*, actor, channel: NotificationChannel) -> None:
    roles.require(actor, roles.ADMINISTRATORS, "deleting a notification channel")
    with transaction.atomic():
        audit_record(actor=actor, action="notification_channel.delete", obj=channel, before=channel_snapshot(channel))
        channel.delete()
        alerts_review_again()


# --- rules -------------------------------------------------------------------------------------


def rule_snapshot(rule: AlertRule) -> dict:
    return {
        **{name: getattr(rule, name) for name in RULE_FIELDS},
        "channels": sorted(c.name for c in rule.channels.all()),
        "escalate_to": sorted(c.name for c in rule.escalate_to.all()),
    }


def alert_rule_check(rule: AlertRule, channels: Sequence[NotificationChannel], escalate_to: Sequence[NotificationChannel]) -> None:
    """Every problem of a rule, by field (ValidationError); the API and the admin forms say the same."""
    errors: dict[str, list[str]] = {}
    if not rule.name.strip():
        errors["name"] = ["a rule needs a name"]
    elif AlertRule.objects.filter(name=rule.name).exclude(id=rule.id).exists():
        errors["name"] = [f"a rule named {rule.name!r} exists already"]
    if not channels:
        errors["channels"] = ["a rule needs at least one channel"]
    if not isinstance(rule.kinds, list) or any(kind not in AlertKind.values for kind in rule.kinds):
        errors["kinds"] = [f"a list of alert kinds (empty: all), each one of {', '.join(AlertKind.values)}"]
    for name in ("repeat_minutes", "escalate_after_minutes"):
        value = getattr(rule, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            errors[name] = ["a whole number of minutes, at least 1 (empty: never)"]
    if rule.escalate_after_minutes and not escalate_to:
        errors["escalate_to"] = ["name the channels to escalate to"]
    if escalate_to and not rule.escalate_after_minutes:
        errors["escalate_after_minutes"] = ["say after how many minutes to escalate"]
    if errors:
        raise ValidationError(errors)


def _save_rule(rule: AlertRule, channels, escalate_to) -> None:
    rule.updated_at = clock.now()
    rule.save()
    rule.channels.set(channels)
    rule.escalate_to.set(escalate_to)
    alerts_review_again()  # a new or changed rule may owe an open episode a repeat or an escalation


def alert_rule_create(
    *,
    actor,
    name: str,
    channels: Sequence[NotificationChannel],
    kinds: list[str] | None = None,
    tenant: str = "",
    config: str = "",
    spool: str = "",
    interface: str = "",
    repeat_minutes: int | None = None,
    escalate_after_minutes: int | None = None,
    escalate_to: Sequence[NotificationChannel] = (),
) -> AlertRule:
    roles.require(actor, roles.ADMINISTRATORS, "creating an alert rule")
    rule = AlertRule(
        name=name, kinds=list(kinds or []), tenant=tenant, config=config, spool=spool, interface=interface,
        repeat_minutes=repeat_minutes, escalate_after_minutes=escalate_after_minutes, created_at=clock.now(),
    )
    alert_rule_check(rule, channels, escalate_to)
    with transaction.atomic():
        _save_rule(rule, channels, escalate_to)
        audit_record(actor=actor, action="alert_rule.create", obj=rule, after=rule_snapshot(rule))
    return rule


def alert_rule_update(
    *,
    actor,
    rule: AlertRule,
    channels: Sequence[NotificationChannel] | None = None,
    escalate_to: Sequence[NotificationChannel] | None = None,
    **fields,
) -> AlertRule:
    """Change the fields given (None: unchanged, except the two numbers, where None means never)."""
    roles.require(actor, roles.ADMINISTRATORS, "changing an alert rule")
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().get(id=rule.id)
        before = rule_snapshot(rule)
        for name in RULE_FIELDS:
            if name in fields:
                setattr(rule, name, fields[name] if fields[name] is not None or name.endswith("_minutes") else getattr(rule, name))
        channels = list(rule.channels.all()) if channels is None else list(channels)
        escalate_to = list(rule.escalate_to.all()) if escalate_to is None else list(escalate_to)
        alert_rule_check(rule, channels, escalate_to)
        _save_rule(rule, channels, escalate_to)
        audit_record(actor=actor, action="alert_rule.update", obj=rule, before=before, after=rule_snapshot(rule))
    return rule


def alert_rule_delete(*, actor, rule: AlertRule) -> None:
    roles.require(actor, roles.ADMINISTRATORS, "deleting an alert rule")
    with transaction.atomic():
        audit_record(actor=actor, action="alert_rule.delete", obj=rule, before=rule_snapshot(rule))
        rule.delete()
