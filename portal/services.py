"""Services shared by every engine: the outbox and the audit log."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, models, transaction

from portal import clock, roles
from portal.backends import lane_for
from portal.lib.bulk import rows_insert
from portal.models import AuditEntry, MessageStatus, OutboundMessage, OutboxLane
from portal.validation import schema_errors

log = logging.getLogger(__name__)

def _lanes_ensure(names: set[str]) -> None:
    # A lane's row exists before its first message commits: the publisher claims lanes, not messages.
    # In name order, so two transactions adding the same new lanes never wait on each other crosswise.
    rows_insert([OutboxLane(name=name) for name in sorted(names)], ignore_conflicts=True)


def outbox_enqueue(*, kind: str, dedupe_key: str, payload: dict) -> OutboundMessage:
    """Store a message for the control queue in the caller's transaction.

    The same dedupe key twice is one message: the existing row is returned and
    nothing is created. A payload that breaks its kind's schema is kept as
    INVALID with the reasons and is never sent.
    """
    existing = OutboundMessage.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return existing
    errors = schema_errors(kind, payload)
    message = OutboundMessage(
        kind=kind,
        lane=lane_for(kind, payload),
        dedupe_key=dedupe_key,
        payload=payload,
        status=MessageStatus.INVALID if errors else MessageStatus.PENDING,
        last_error="\n".join(errors),
        created_at=clock.now(),
        next_attempt_at=clock.now(),
    )
    _lanes_ensure({message.lane})
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        # Another transaction stored the same key between our read and write.
        return OutboundMessage.objects.get(dedupe_key=dedupe_key)
    if errors:
        log.error("outbox: %s %s is INVALID: %s", kind, dedupe_key, "; ".join(errors))
    return message


@dataclass(frozen=True)
class PendingMessage:
    kind: str
    dedupe_key: str
    payload: dict


def outbox_enqueue_bulk(*, messages: list[PendingMessage]) -> int:
    """``outbox_enqueue`` for many messages at once: one INSERT that skips the keys already stored.

    The same contract: a dedupe key already stored (or repeated in ``messages``) is
    skipped, a payload that breaks its kind's schema is kept as INVALID with the
    reasons. Runs in the caller's transaction; returns how many rows were added.
    Rows are inserted in the order given, so their ids keep that order.
    """
    if not messages:
        return 0
    now = clock.now()
    seen: set[str] = set()
    rows = []
    for message in messages:
        if message.dedupe_key in seen:
            continue
        seen.add(message.dedupe_key)
        errors = schema_errors(message.kind, message.payload)
        if errors:
            log.error("outbox: %s %s is INVALID: %s", message.kind, message.dedupe_key, "; ".join(errors))
        rows.append(
            OutboundMessage(
                kind=message.kind,
                lane=lane_for(message.kind, message.payload),
                dedupe_key=message.dedupe_key,
                payload=message.payload,
                status=MessageStatus.INVALID if errors else MessageStatus.PENDING,
                last_error="\n".join(errors),
                created_at=now,
                next_attempt_at=now,
            )
        )
    _lanes_ensure({row.lane for row in rows})
    # The unique dedupe key skips a key stored before (or by a concurrent transaction) in the
    # INSERT itself, as outbox_enqueue does: no lookup first, one round trip less per request.
    return rows_insert(rows, ignore_conflicts=True)


def outbox_retry(*, messages: models.QuerySet[OutboundMessage], actor, reason: str = "") -> int:
    """Put FAILED messages back in the queue ("publish again"); an Operator's action."""
    if getattr(actor, "is_authenticated", False) and not roles.can_operate(actor):
        raise PermissionDenied("publishing a message again needs the Operator role")
    now = clock.now()
    count = 0
    with transaction.atomic():
        for message in messages.filter(status=MessageStatus.FAILED):
            changed = OutboundMessage.objects.filter(id=message.id, status=MessageStatus.FAILED).update(
                status=MessageStatus.PENDING, next_attempt_at=now
            )
            if changed:
                count += 1
                audit_record(
                    actor=actor,
                    action="outbox.publish_again",
                    obj=message,
                    before={"status": MessageStatus.FAILED},
                    after={"status": MessageStatus.PENDING},
                    reason=reason,
                )
    return count


# The reason a request gave (a "reason" field in its JSON body, or ?reason=), for the
# audit rows its services write without one of their own: configuration changes take
# no reason argument, yet DOMAIN §4 wants the reason kept for them too.
_request_reason: contextvars.ContextVar[dict | None] = contextvars.ContextVar("portal_request_reason", default=None)


@contextlib.contextmanager
def audit_reason_scope(reason: str = "") -> Iterator[None]:
    """Within this scope (one request), audit rows without a reason get the request's."""
    token = _request_reason.set({"reason": reason})
    try:
        yield
    finally:
        _request_reason.reset(token)


def audit_reason_note(reason: object) -> None:
    """The request's body named a reason: keep it for the audit rows of this scope."""
    holder = _request_reason.get()
    if holder is not None and isinstance(reason, str) and reason.strip() and not holder["reason"]:
        holder["reason"] = reason.strip()


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEntry:
    """Keep one audit row for an operator action or a configuration change."""
    if not reason:
        holder = _request_reason.get()
        reason = holder["reason"] if holder else ""
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or str(obj.pk)
    return AuditEntry.objects.create(
        at=clock.now(),
        actor=roles.acting_user(actor),
        actor_name=roles.actor_label(actor),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=str(obj)[:200] if obj is not None else "",
        before=before,
        after=after,
        reason=reason or "",
    )


def user_access_snapshot(user) -> dict:
    """What decides a person's access: their roles and the account flags."""
    return {
        "username": user.get_username(),
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


def user_access_changed(*, actor, user, before: dict | None, reason: str = "") -> AuditEntry | None:
    """Audit who gave whom which roles (or took them away); nothing when access did not change."""
    after = user_access_snapshot(user)
    if before == after:
        return None
    action = "user.create" if before is None else "user.update"
    return audit_record(actor=actor, action=action, obj=user, before=before, after=after, reason=reason)


def user_access_removed(*, actor, user, reason: str = "") -> AuditEntry:
    return audit_record(actor=actor, action="user.delete", obj=user, before=user_access_snapshot(user), reason=reason)


DEMO_ADMIN_USERNAME = "admin"


def demo_admin_ensure() -> tuple[str, str, bool]:
    """The demo administrator of `make run`; its password lives in the data folder, not the repository."""
    import secrets

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from portal.roles import ADMINISTRATOR

    password_file = settings.DATA_DIR / "demo-admin-password"
    if password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
    User = get_user_model()
    user, created = User.objects.get_or_create(username=DEMO_ADMIN_USERNAME, defaults={"is_staff": True, "is_superuser": True})
    if created or not user.check_password(password):
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
    user.groups.add(Group.objects.get(name=ADMINISTRATOR))
    return DEMO_ADMIN_USERNAME, password, created


def demo_load() -> list[str]:
    """Run each demo loader of ``settings.DEMO_LOADERS``; each loads its data once."""
    from django.utils.module_loading import import_string

    lines = []
    for path in settings.DEMO_LOADERS:
        with transaction.atomic():
            lines.append(f"{path}: {import_string(path)()}")
    return lines


def schedules_setup() -> list[tuple[str, bool]]:
    """Update-or-create by name: re-running never resets a schedule's next run."""
    from django_q.models import Schedule

    Schedule.objects.filter(name__in=settings.RETIRED_SCHEDULES).delete()
    done = []
    for name, (func, minutes) in settings.PORTAL_SCHEDULES.items():
        _, created = Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
        done.append((name, created))
    return done
