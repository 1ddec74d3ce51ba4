"""Prometheus figures of the batch monitor, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from monitoring.batches.selectors import alerting_counts


def batch_metrics() -> Iterator[Metric]:
    batches = GaugeMetricFamily("portal_batches", "Batch configs alerting, by state (open, delayed).", labels=["state"])
    for state, count in alerting_counts().items():
        batches.add_metric([state.lower()], count)
    yield batches
