"""Usual arrivals learned from history (DOMAIN §8), for the AT_RISK state of the batch scan.

A source's usual arrival is the 90th percentile of (received at - window start) over
the config's last 20 completed windows, known once 5 have completed. It is learned
when a window completes and kept on the config, so the scan reads one row.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from monitoring.batches.models import BatchConfig, BatchFile, BatchWindow, WindowStatus
from portal.lib.bulk import rows_update

HISTORY_WINDOWS = 20
MIN_WINDOWS = 5
PERCENTILE = 90
# Windows whose files are read in one statement (SQLite takes at most 32,766 parameters).
LOOKUP_CHUNK = 5000


def percentile(values: list[float], percent: int = PERCENTILE) -> float:
    """The nearest-rank percentile: a value that was seen, never one between two."""
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)), 1) - 1]


def usual_arrivals_learn(*, configs: Iterable[BatchConfig]) -> None:
    """Learn again, from their last completed windows, when each source of these configs usually
    arrives, and store what changed: three statements however many configs (a list of arrivals
    completes hundreds)."""
    by_id = {config.id: config for config in configs}
    ids = sorted(by_id)
    if not ids:
        return
    recent = (
        BatchWindow.objects.filter(config_id__in=ids, status=WindowStatus.COMPLETED)
        .annotate(recency=Window(RowNumber(), partition_by=[F("config_id")], order_by=[F("window_start").desc()]))
        .filter(recency__lte=HISTORY_WINDOWS)
        .values_list("id", "config_id", "window_start")
    )
    windows: dict[int, tuple[int, dt.datetime]] = {}
    count: dict[int, int] = defaultdict(int)
    for window_id, config_id, window_start in recent:
        windows[window_id] = (config_id, window_start)
        count[config_id] += 1
    learned = [window_id for window_id, (config_id, _) in windows.items() if count[config_id] >= MIN_WINDOWS]
    offsets: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for start in range(0, len(learned), LOOKUP_CHUNK):
        files = BatchFile.objects.filter(window_id__in=learned[start : start + LOOKUP_CHUNK], counted=True)
        for window_id, source, received_at in files.values_list("window_id", "source_name", "received_at"):
            config_id, window_start = windows[window_id]
            offsets[config_id][source].append((received_at - window_start).total_seconds())
    changed = []
    for config_id in ids:
        usual = {source: round(percentile(seconds)) for source, seconds in sorted(offsets[config_id].items())}
        if usual != by_id[config_id].usual_arrivals:
            by_id[config_id].usual_arrivals = usual
            changed.append(by_id[config_id])
    rows_update(changed, ["usual_arrivals"])
