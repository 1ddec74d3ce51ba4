"""Retention of the batch monitor (DOMAIN §9): finished windows with their files, and refused arrivals."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from monitoring.batches.models import BatchAlert, BatchConfig, BatchFile, BatchWindow, WindowStatus
from portal.lib.bulk import rows_delete


def batch_windows_prune(*, before: dt.datetime, batch_size: int) -> dict[str, int]:
    """Windows finished before ``before`` with their files, and arrivals refused before it.

    Never an open window, a config's latest window (the next one is placed after it),
    the window an alert names, or a held arrival.
    """
    needed = set(BatchConfig.objects.exclude(latest_window=None).values_list("latest_window_id", flat=True))
    needed |= set(BatchAlert.objects.exclude(window=None).values_list("window_id", flat=True))
    finished = Q(status=WindowStatus.COMPLETED, completed_at__lt=before) | Q(status=WindowStatus.FAILED, failed_at__lt=before)
    windows = rows_delete(
        BatchWindow.objects.filter(finished).exclude(id__in=needed),
        batch_size=batch_size,
        children=lambda ids: BatchFile.objects.filter(window_id__in=ids),
    )
    refused = rows_delete(BatchFile.objects.filter(window=None, held=False, received_at__lt=before), batch_size=batch_size)
    label = BatchFile._meta.label
    return {"batch windows": windows[BatchWindow._meta.label], "batch files": windows[label] + refused[label]}
