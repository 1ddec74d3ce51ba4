"""Prometheus figures of the alerts, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from portal.alerts.selectors import open_alert_counts


def alert_metrics() -> Iterator[Metric]:
    alerts = GaugeMetricFamily("portal_alerts_open", "Alert episodes not resolved (open or acknowledged), by kind.", labels=["kind"])
    for kind, count in open_alert_counts().items():
        alerts.add_metric([kind], count)
    yield alerts
