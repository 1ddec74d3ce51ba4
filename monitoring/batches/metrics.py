"""Prometheus figures of the batch monitor, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from monitoring.batches.models import AlertState, BatchAlert
from monitoring.batches.selectors import alerting_counts


def batch_metrics() -> Iterator[Metric]:
    batches = GaugeMetricFamily("portal_batches", "Batch configs alerting, by state (at_risk, open, delayed).", labels=["state"])
    for state, count in alerting_counts().items():
        batches.add_metric([state.lower()], count)
    yield batches

    alerting = GaugeMetricFamily(
        "portal_batch_alerting", "1 for each batch config alerting now, by tenant, config and state (at_risk, open, delayed).",
        labels=["tenant", "config", "state"],
    )
    rows = BatchAlert.objects.exclude(state=AlertState.NONE).values_list("config__tenant", "config__name", "state")
    for tenant, config, state in rows.order_by("config__tenant", "config__name"):
        alerting.add_metric([tenant, config, state.lower()], 1)
    yield alerting
