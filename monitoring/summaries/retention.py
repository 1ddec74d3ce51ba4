"""Retention of the summaries (DOMAIN §9): summary events and finished transactions."""

from __future__ import annotations

import datetime as dt

from monitoring.summaries.models import ServiceSummary, Transaction, TransactionStatus
from portal.lib.bulk import rows_delete
from portal.models import MessageStatus


def summaries_prune(*, before: dt.datetime, batch_size: int) -> dict[str, int]:
    """Summary events emitted before ``before`` (not one whose message is still on its way), and
    transactions finished before it (a pending one is in every summary until it finishes)."""
    events = ServiceSummary.objects.filter(emitted_at__lt=before).exclude(message__status=MessageStatus.PENDING)
    finished = Transaction.objects.filter(status__in=[TransactionStatus.COMPLETED, TransactionStatus.FAILED], completed_at__lt=before)
    return {
        "summary events": rows_delete(events, batch_size=batch_size)[ServiceSummary._meta.label],
        "transactions": rows_delete(finished, batch_size=batch_size)[Transaction._meta.label],
    }
