"""Services shared by every engine: the outbox and the audit log."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, close_old_connections, connection, models, transaction

from portal import clock, roles
from portal.backends import QueueBackend, SendResult, backend_name_for, get_backend
from portal.lib.bulk import rows_insert
from portal.models import AuditEntry, MessageStatus, OutboundMessage
from portal.validation import schema_errors

log = logging.getLogger(__name__)

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
        dedupe_key=dedupe_key,
        payload=payload,
        status=MessageStatus.INVALID if errors else MessageStatus.PENDING,
        last_error="\n".join(errors),
        created_at=clock.now(),
        next_attempt_at=clock.now(),
    )
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
    """``outbox_enqueue`` for many messages at once: one dedupe lookup, one INSERT.

    The same contract: a dedupe key already stored (or repeated in ``messages``) is
    skipped, a payload that breaks its kind's schema is kept as INVALID with the
    reasons. Runs in the caller's transaction; returns how many rows were added.
    Rows are inserted in the order given, so their ids keep that order.
    """
    if not messages:
        return 0
    now = clock.now()
    keys = [m.dedupe_key for m in messages]
    existing = set(OutboundMessage.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
    rows = []
    for message in messages:
        if message.dedupe_key in existing:
            continue
        existing.add(message.dedupe_key)
        errors = schema_errors(message.kind, message.payload)
        if errors:
            log.error("outbox: %s %s is INVALID: %s", message.kind, message.dedupe_key, "; ".join(errors))
        rows.append(
            OutboundMessage(
                kind=message.kind,
                dedupe_key=message.dedupe_key,
                payload=message.payload,
                status=MessageStatus.INVALID if errors else MessageStatus.PENDING,
                last_error="\n".join(errors),
                created_at=now,
                next_attempt_at=now,
            )
        )
    # Another transaction may store one of these keys meanwhile: the unique key keeps
    # its row and skips ours, as outbox_enqueue does.
    return rows_insert(rows, ignore_conflicts=True)


@dataclass
class PublishReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed


CLAIM_TRIES = 5


def outbox_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def outbox_claim(*, now: dt.datetime, limit: int) -> list[OutboundMessage]:
    """Lease the oldest due messages to this publisher; others skip them until the lease ends.

    The conditional UPDATE is the claim: a second publisher that read the same ids
    finds them leased (PostgreSQL re-checks the WHERE after the first commits) and
    gets none of them. A publisher that dies after sending and before marking
    leaves its messages leased: they go out again once the lease has passed.
    """
    token = uuid.uuid4()
    for _ in range(CLAIM_TRIES):
        ids = list(OutboundMessage.objects.due(now).order_by("created_at", "id").values_list("id", flat=True)[:limit])
        if not ids:
            return []
        if OutboundMessage.objects.due(now).filter(id__in=ids).update(claim_token=token, lease_until=now + outbox_lease()):
            break
        # Another publisher claimed every one of them first: there may be more behind them.
    return list(OutboundMessage.objects.filter(claim_token=token, status=MessageStatus.PENDING).order_by("created_at", "id"))


def outbox_record_results(*, messages: list[OutboundMessage], results: list[SendResult], now: dt.datetime) -> PublishReport:
    """Mark what was sent; only rows this publisher still holds (its lease may have lapsed)."""
    report = PublishReport()
    by_id = {result.message_id: result for result in results}
    for message in messages:
        result = by_id.get(message.id) or SendResult(message.id, False, error="no answer from the queue")
        if result.untried:
            continue
        if result.ok:
            report.sent += 1
        elif result.permanent:
            report.failed += 1
        else:
            report.retrying += 1
        if result.error:
            report.errors.append(f"{message.dedupe_key}: {result.error}")
    with transaction.atomic():
        tokens = {message.claim_token for message in messages}
        held = set(
            OutboundMessage.objects.select_for_update()
            .filter(id__in=[m.id for m in messages], claim_token__in=tokens, status=MessageStatus.PENDING)
            .values_list("id", flat=True)
        )
        lost = [m.dedupe_key for m in messages if m.id not in held]
        if lost:
            log.warning("outbox: lease lapsed before marking %s; another publisher owns them now", ", ".join(lost))
        owned = [m for m in messages if m.id in held]
        for message in owned:
            result = by_id.get(message.id) or SendResult(message.id, False, error="no answer from the queue")
            message.lease_until = None
            message.claim_token = None
            if result.untried:
                continue
            message.attempts += 1
            if result.ok:
                message.status = MessageStatus.SENT
                message.sent_at = now
                message.queue_message_id = result.queue_message_id
                message.last_error = ""
            elif result.permanent:
                message.status = MessageStatus.FAILED
                message.last_error = result.error
            else:
                message.next_attempt_at = message.backoff_after_failure(now, settings.OUTBOX_BACKOFF_MAX_SECONDS)
                message.last_error = result.error
        OutboundMessage.objects.bulk_update(
            owned,
            ["attempts", "lease_until", "claim_token", "status", "sent_at", "queue_message_id", "last_error", "next_attempt_at"],
        )
    return report


def outbox_send(*, backend: QueueBackend, messages: list[OutboundMessage]) -> list[SendResult]:
    """Hand the claimed messages to the backend, a batch at a time, inside the lease.

    Elapsed real time (not the portal's clock, which a replay may hold still) is
    what a lease protects against: a batch is started only while at least half the
    lease is left, so a slow queue cannot let the lease run out mid-send and another
    publisher send the same messages again. A batch that fails as a whole (the queue
    is down) stops the send: the rest back off with it instead of each waiting for
    its own timeout.
    """
    size = getattr(backend, "batch_limit", None) or len(messages)
    budget = settings.OUTBOX_LEASE_SECONDS / 2
    started = time.monotonic()
    results: list[SendResult] = []
    for start in range(0, len(messages), size):
        chunk = messages[start : start + size]
        if time.monotonic() - started > budget:
            results += [SendResult(m.id, False, untried=True) for m in messages[start:]]
            break
        try:
            answer = backend.send(chunk)  # network I/O: no transaction, no lock held
        except Exception as exc:  # noqa: BLE001  - any backend fault means "try again later"
            log.warning("outbox: backend failed: %s", exc)
            answer = [SendResult(m.id, False, error=f"{type(exc).__name__}: {exc}") for m in chunk]
        results += answer
        if answer and not any(r.ok or r.permanent for r in answer):
            error = answer[0].error
            results += [SendResult(m.id, False, error=f"not sent after a failed batch: {error}") for m in messages[start + size :]]
            break
    return results


def _send_through(name: str, backend: QueueBackend | None, messages: list[OutboundMessage]) -> list[SendResult]:
    try:
        backend = backend or get_backend(name)
    except Exception as exc:  # noqa: BLE001  - a backend that cannot start is a failed send
        log.warning("outbox: backend %s unavailable: %s", name, exc)
        return [SendResult(m.id, False, error=f"{type(exc).__name__}: {exc}") for m in messages]
    return outbox_send(backend=backend, messages=messages)


def outbox_publish(*, limit: int | None = None, backend: QueueBackend | None = None) -> PublishReport:
    """Send one batch of due messages, oldest first; failures back off, nothing is dropped.

    Each message leaves through its kind's backend (notifications to people, the rest
    to the control queue; ``backend`` stands in for the control queue's): one that
    fails holds back only its own messages.
    """
    now = clock.now()
    messages = outbox_claim(now=now, limit=limit or settings.OUTBOX_BATCH_SIZE)
    if not messages:
        return PublishReport()
    routes: dict[str, list[OutboundMessage]] = {}
    for message in messages:
        routes.setdefault(backend_name_for(message.kind), []).append(message)
    results: list[SendResult] = []
    for name, routed in routes.items():
        results += _send_through(name, backend if name == settings.CONTROL_QUEUE_BACKEND else None, routed)
    report = outbox_record_results(messages=messages, results=results, now=clock.now())
    _watch_outbox(report)
    return report


def _watch_outbox(report: PublishReport) -> None:
    # The alerts build on this module: imported here, at the first turn, not at import time.
    from portal.alerts.watch import alerts_watch_outbox_after_publish

    try:
        alerts_watch_outbox_after_publish(now=clock.now(), troubled=bool(report.failed or report.retrying))
    except Exception:  # noqa: BLE001  - what was sent is recorded; the next tick looks at the outbox again
        log.exception("outbox: looking for OUTBOX_FAILED and OUTBOX_STALLED failed")


def outbox_publish_all(*, backend: QueueBackend | None = None) -> PublishReport:
    """Publish batches until nothing is due (what the command and the task do)."""
    total = PublishReport()
    while True:
        report = outbox_publish(backend=backend)
        total.sent += report.sent
        total.retrying += report.retrying
        total.failed += report.failed
        total.errors += report.errors
        if report.handled == 0 or report.retrying or report.failed:
            return total


def outbox_publish_loop(*, stop) -> None:
    """The `publisher` process: publish what is due, wait a poll interval when idle; until stopped.

    A turn that fails (the database restarting, SQLite busy past its timeout) is
    logged and the loop goes on: under `make run` one process exiting stops them all.
    """
    while not stop.stopped:
        if not connection.in_atomic_block:  # a long-lived process: drop connections the database closed
            close_old_connections()
        try:
            report = outbox_publish_all()
        except Exception:  # noqa: BLE001  - an outage must not end the publisher
            log.exception("outbox: publishing failed; trying again")
            if not connection.in_atomic_block:  # a broken connection is opened afresh next turn
                connection.close()
            stop.wait(settings.OUTBOX_POLL_SECONDS)
            continue
        if report.handled == 0 or report.retrying or report.failed:
            stop.wait(settings.OUTBOX_POLL_SECONDS)


def outbox_retry(*, messages: models.QuerySet[OutboundMessage], actor, reason: str = "") -> int:
    """Put FAILED messages back in the queue ("publish again"); an Operator's action."""
    if getattr(actor, "is_authenticated", False) and not roles.can_operate(actor):
        raise PermissionDenied("publishing a message again needs the Operator role")
    now = clock.now()
    count = 0
    with transaction.atomic():
        for message in messages.filter(status=MessageStatus.FAILED):
            changed = OutboundMessage.objects.filter(id=message.id, status=MessageStatus.FAILED).update(
                status=MessageStatus.PENDING, next_attempt_at=now, lease_until=None, claim_token=None
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
