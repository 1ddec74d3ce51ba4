"""Many outbox messages in one INSERT, with the same rules as ``portal.services.outbox_enqueue``.

Bulk arrivals and the scan raise thousands of messages per transaction; one row at a
time would dominate their cost. Same contract: validated against the kind's schema
(INVALID rows are kept and never sent), and a dedupe key already stored is skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from portal import clock
from portal.models import MessageStatus, OutboundMessage
from portal.validation import schema_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingMessage:
    kind: str
    dedupe_key: str
    payload: dict


def outbox_enqueue_bulk(*, messages: list[PendingMessage]) -> int:
    """Store ``messages`` in the caller's transaction; returns how many were new."""
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
    OutboundMessage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)
