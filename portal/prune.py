"""Retention (DOMAIN §9): one service deletes what is older than PRUNE_AFTER_DAYS, in bounded batches.

The kernel prunes its own rows (sent messages, audit rows when AUDIT_PRUNE_AFTER_DAYS is
set); each engine's part is named in ``settings.PRUNE_STEPS``. Never a row that an
open window, a job, an alert or a pending message still needs; the counters in
/metrics are tallies of their own and do not go down.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils.module_loading import import_string

from portal.lib.bulk import rows_delete
from portal.models import AuditEntry, MessageStatus, OutboundMessage

log = logging.getLogger(__name__)


def retention_prune(*, now: dt.datetime) -> dict[str, int]:
    """Delete what retention allows as of ``now``; returns rows deleted by what."""
    before = now - dt.timedelta(days=settings.PRUNE_AFTER_DAYS)
    size = settings.PRUNE_BATCH_SIZE
    deleted: dict[str, int] = {}
    for path in settings.PRUNE_STEPS:
        deleted.update(import_string(path)(before=before, batch_size=size))
    sent = OutboundMessage.objects.filter(status=MessageStatus.SENT, sent_at__lt=before)
    deleted["sent messages"] = rows_delete(sent, batch_size=size)[OutboundMessage._meta.label]
    if settings.AUDIT_PRUNE_AFTER_DAYS:
        old = AuditEntry.objects.filter(at__lt=now - dt.timedelta(days=settings.AUDIT_PRUNE_AFTER_DAYS))
        deleted["audit entries"] = rows_delete(old, batch_size=size)[AuditEntry._meta.label]
    log.info("prune: %s", ", ".join(f"{what} {count}" for what, count in deleted.items()))
    return deleted
