"""The outbox's publisher (DOMAIN §4): lanes claimed one publisher at a time, oldest message first.

A lane is a kind of message (or a kind and its receiver). Its messages leave in the
order they were written, also after an outage: the publisher that holds a lane sends
its oldest pending messages, stops at the first batch that fails, and the whole lane
then waits (2, 4, 8 ... s, capped) before its oldest message is tried again. Nothing is
dropped; an INVALID message is never pending, so never sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Exists, F, OuterRef

from portal import clock
from portal.alerts.tallies import tally_add
from portal.backends import QueueBackend, SendResult, backend_name_for, get_backend
from portal.lib.bulk import row_instance, rows_update
from portal.models import MessageStatus, OutboundMessage, OutboxLane

log = logging.getLogger(__name__)

# The tally behind portal_messages_published_total: counted when a message is marked SENT, never
# from the outbox rows, which retention prunes (DOMAIN §9).
PUBLISHED_TALLY = "messages_published"
# How long a run of turns (``outbox_publish_all``) keeps one lane for batch after batch before the
# other lanes get their turn: a commit and no claim per batch, and no lane waits behind a deep one for long.
LANE_HOLD_SECONDS = 1.0


@dataclass
class PublishReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed

    def add(self, other: PublishReport) -> None:
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.errors += other.errors


@dataclass(frozen=True)
class LaneClaim:
    """A lane this publisher holds until ``lease_until``, and its oldest pending messages."""

    lane: str
    token: uuid.UUID
    messages: list[OutboundMessage]
    taken_over: bool = False  # from a publisher whose lease lapsed: it may have sent some before it died


def outbox_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def lanes_ready(*, now: dt.datetime) -> list[str]:
    """Lanes with a pending message that no publisher holds and that are not waiting after a failure."""
    pending = OutboundMessage.objects.filter(lane=OuterRef("name"), status=MessageStatus.PENDING)
    return list(OutboxLane.objects.ready(now).filter(Exists(pending)).order_by("id").values_list("name", flat=True))


def outbox_claim(*, now: dt.datetime, limit: int, lane: str | None = None) -> LaneClaim | None:
    """Hold one lane (the given one, or the first ready) and take its ``limit`` oldest pending messages.

    The conditional UPDATE is the claim: a second publisher that read the same lane
    finds it held (PostgreSQL re-checks the WHERE after the first commits) and gets
    nothing. A publisher that dies after sending and before marking leaves the lane
    held: its messages go out again once the lease has passed (FIFO queues drop the copy,
    the local file skips the lines it already has: ``taken_over``).
    """
    for name in [lane] if lane else lanes_ready(now=now):
        token = uuid.uuid4()
        # Read before the claim: a token still set then is a holder whose lease lapsed (a live one keeps us out).
        held_before = OutboxLane.objects.filter(name=name, claim_token__isnull=False).exists()
        if OutboxLane.objects.ready(now).filter(name=name).update(claim_token=token, lease_until=now + outbox_lease()):
            messages = _pending_read(name, limit)
            if messages:
                return LaneClaim(name, token, messages, taken_over=held_before)
            # Another publisher sent them between our look and our claim.
            OutboxLane.objects.filter(name=name, claim_token=token).update(claim_token=None, lease_until=None)
    return None


def _pending_read(lane: str, limit: int) -> list[OutboundMessage]:
    """The ``limit`` oldest pending messages of ``lane``, every field read as plain columns (no ``Model.__init__``:
    a fifth of a batch's time beside a plain loop)."""
    names = [f.attname for f in OutboundMessage._meta.concrete_fields]
    rows = OutboundMessage.objects.filter(lane=lane, status=MessageStatus.PENDING).order_by("id").values_list(*names)[:limit]
    return [row_instance(OutboundMessage, names, row) for row in rows]


def _outcome(report: PublishReport, message: OutboundMessage, result: SendResult, now: dt.datetime) -> None:
    message.attempts += 1
    if result.ok:
        report.sent += 1
        message.status, message.sent_at, message.queue_message_id, message.last_error = MessageStatus.SENT, now, result.queue_message_id, ""
        return
    report.errors.append(f"{message.dedupe_key}: {result.error}")
    message.last_error = result.error
    if result.permanent:
        report.failed += 1
        message.status = MessageStatus.FAILED
    else:
        report.retrying += 1


def outbox_record_results(*, claim: LaneClaim, results: list[SendResult], now: dt.datetime, hold: bool = False) -> PublishReport:
    """Mark what was sent and release the lane, in one transaction; only while this publisher still holds it.

    A transient failure makes the whole lane wait; messages never handed over
    (``untried``) wait with it without an attempt counted. With ``hold``, a lane whose
    every message was handed over is kept, its lease renewed, for its next batch.
    """
    report = PublishReport()
    by_id = {result.message_id: result for result in results}
    tried = []
    for message in claim.messages:
        result = by_id.get(message.id) or SendResult(message.id, False, error="no answer from the queue")
        if not result.untried:
            _outcome(report, message, result, now)
            tried.append(message)
    changes: dict = {"claim_token": None, "lease_until": None}
    if report.retrying:
        failures = OutboxLane.objects.values_list("failures", flat=True).get(name=claim.lane) + 1
        wait_until = OutboxLane.backoff_after(failures, now, settings.OUTBOX_BACKOFF_MAX_SECONDS)
        changes.update(failures=failures, next_attempt_at=wait_until, last_error=report.errors[-1])
        for message in tried:
            if message.status == MessageStatus.PENDING:
                message.next_attempt_at = wait_until
    elif report.sent or report.failed:  # the queue answered (a refusal too): the lane is well again
        changes.update(failures=0, next_attempt_at=None, last_error="")
        if hold and len(tried) == len(claim.messages):
            changes.update(claim_token=claim.token, lease_until=now + outbox_lease())
    with transaction.atomic():
        # Released and marked in one transaction, only by the publisher that still holds the lane.
        held = OutboxLane.objects.filter(name=claim.lane, claim_token=claim.token).update(**changes)
        if not held:
            log.warning("outbox: lease of lane %s lapsed before marking; another publisher owns it now", claim.lane)
            return PublishReport()
        _mark(tried, now)
        for kind, count in Counter(m.kind for m in tried if m.status == MessageStatus.SENT).items():
            tally_add(name=PUBLISHED_TALLY, key=kind, amount=count)
    return report


def _mark(tried: list[OutboundMessage], now: dt.datetime) -> None:
    """Write the outcomes: one set-based UPDATE for the messages sent with no queue id of their own
    (the local file), the fast bulk update for the rest (SQS message ids, failures)."""
    plain = [m.id for m in tried if m.status == MessageStatus.SENT and not m.queue_message_id]
    if plain:
        OutboundMessage.objects.filter(id__in=plain).update(status=MessageStatus.SENT, sent_at=now, attempts=F("attempts") + 1, last_error="")
    plain_ids = set(plain)
    rest = [m for m in tried if m.id not in plain_ids]
    rows_update(rest, ["status", "attempts", "sent_at", "queue_message_id", "last_error", "next_attempt_at"])


def outbox_send(*, backend: QueueBackend, messages: list[OutboundMessage], taken_over: bool = False) -> list[SendResult]:
    """Hand one lane's messages to the backend, a batch at a time, oldest first, inside the lease.

    Elapsed real time (not the portal's clock, which a replay may hold still) is
    what a lease protects against: a batch is started only while at least half the
    lease is left, so a slow queue cannot let the lease run out mid-send and another
    publisher send the same messages again. The first batch with a message that
    failed and may succeed later stops the lane: nothing younger may overtake it, and
    the rest back off with it instead of each waiting for its own timeout. A lane
    ``taken_over`` from a dead publisher first asks a backend that can tell (``delivered``)
    which of its messages that publisher handed over: those are marked, not sent again.
    """
    results: list[SendResult] = []
    if taken_over and hasattr(backend, "delivered"):
        delivered = backend.delivered(messages)
        results = [SendResult(m.id, True) for m in messages if m.id in delivered]
        messages = [m for m in messages if m.id not in delivered]
    size = getattr(backend, "batch_limit", None) or max(len(messages), 1)
    budget = settings.OUTBOX_LEASE_SECONDS / 2
    started = time.monotonic()
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
        failed = next((r for r in answer if not (r.ok or r.permanent or r.untried)), None)
        if failed is not None:
            rest = messages[start + size :]
            results += [SendResult(m.id, False, error=f"not sent after a failed batch: {failed.error}") for m in rest]
            break
    return results


def _send_through(name: str, started: dict[str, QueueBackend], claim: LaneClaim) -> list[SendResult]:
    messages = claim.messages
    try:
        if name not in started:
            started[name] = get_backend(name)  # a boto3 client costs tens of ms: one per run of turns
    except Exception as exc:  # noqa: BLE001  - a backend that cannot start is a failed send
        log.warning("outbox: backend %s unavailable: %s", name, exc)
        return [SendResult(m.id, False, error=f"{type(exc).__name__}: {exc}") for m in messages]
    return outbox_send(backend=started[name], messages=messages, taken_over=claim.taken_over)


def outbox_publish(
    *,
    limit: int | None = None,
    backend: QueueBackend | None = None,
    started: dict[str, QueueBackend] | None = None,
    hold_seconds: float = 0,
) -> PublishReport:
    """One turn: each ready lane once, up to ``limit`` of its oldest messages; failures back off, nothing is dropped.

    Each lane leaves through its kind's backend (notifications to people, the rest to
    the control queue; ``backend`` stands in for the control queue's): one that fails
    holds back only its own lane. ``started`` keeps the backends across turns. With
    ``hold_seconds``, a lane is kept for batch after batch until it is empty, fails, or
    was held that long (elapsed real time): each batch is marked with its lease renewed
    in one commit, with no look for lanes and no claim between them.
    """
    started = {} if started is None else started
    if backend is not None:
        started[settings.CONTROL_QUEUE_BACKEND] = backend
    limit = limit or settings.OUTBOX_BATCH_SIZE
    total = PublishReport()
    for name in lanes_ready(now=clock.now()):
        claim = outbox_claim(now=clock.now(), limit=limit, lane=name)
        began = time.monotonic()
        while claim is not None:
            results = _send_through(backend_name_for(claim.messages[0].kind), started, claim)
            hold = time.monotonic() - began < hold_seconds
            report = outbox_record_results(claim=claim, results=results, now=clock.now(), hold=hold)
            total.add(report)
            whole = report.sent + report.failed == len(claim.messages)  # each one handed over, none to retry
            claim = _next_batch(claim, limit) if hold and whole else None
    if total.handled:
        _watch_outbox(total)
    return total


def _next_batch(claim: LaneClaim, limit: int) -> LaneClaim | None:
    """The held lane's next ``limit`` messages, or the lane released when none is left."""
    messages = _pending_read(claim.lane, limit)
    if messages:
        return LaneClaim(claim.lane, claim.token, messages)
    OutboxLane.objects.filter(name=claim.lane, claim_token=claim.token).update(claim_token=None, lease_until=None)
    return None


def _watch_outbox(report: PublishReport) -> None:
    # The alerts build on the outbox: imported here, at the first turn, not at import time.
    from portal.alerts.watch import alerts_watch_outbox_after_publish

    try:
        alerts_watch_outbox_after_publish(now=clock.now(), troubled=bool(report.failed or report.retrying))
    except Exception:  # noqa: BLE001  - what was sent is recorded; the next tick looks at the outbox again
        log.exception("outbox: looking for OUTBOX_FAILED and OUTBOX_STALLED failed")


def outbox_publish_all(*, backend: QueueBackend | None = None) -> PublishReport:
    """Publish turns until a turn sends nothing: what is left waits or fails (what the command and the task do)."""
    total, started = PublishReport(), {}
    while True:
        report = outbox_publish(backend=backend, started=started, hold_seconds=LANE_HOLD_SECONDS)
        total.add(report)
        if report.sent == 0:
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
