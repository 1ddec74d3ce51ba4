"""Usual arrivals learned from history (DOMAIN §8), for the AT_RISK state of the batch scan.

A source's usual arrival is the 90th percentile of (received at - window start) over
the config's last 20 completed windows, known once 5 have completed. It is learned
when a window completes and kept on the config, so the scan reads one row.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from monitoring.batches.models import BatchConfig, BatchFile, BatchWindow, WindowStatus

HISTORY_WINDOWS = 20
MIN_WINDOWS = 5
PERCENTILE = 90


def percentile(values: list[float], percent: int = PERCENTILE) -> float:
    """The nearest-rank percentile: a value that was seen, never one between two."""
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)), 1) - 1]


def usual_arrivals_learn(*, config_ids: Iterable[int]) -> None:
    """Learn again, from their last completed windows, when each source of these configs usually arrives."""
    for config_id in sorted(set(config_ids)):
        windows = dict(
            BatchWindow.objects.filter(config_id=config_id, status=WindowStatus.COMPLETED)
            .order_by("-window_start")
            .values_list("id", "window_start")[:HISTORY_WINDOWS]
        )
        usual: dict[str, int] = {}
        if len(windows) >= MIN_WINDOWS:
            offsets: dict[str, list[float]] = defaultdict(list)
            files = BatchFile.objects.filter(window_id__in=list(windows), counted=True).values_list("window_id", "source_name", "received_at")
            for window_id, source, received_at in files:
                offsets[source].append((received_at - windows[window_id]).total_seconds())
            usual = {source: round(percentile(seconds)) for source, seconds in sorted(offsets.items())}
        BatchConfig.objects.filter(id=config_id).update(usual_arrivals=usual)
