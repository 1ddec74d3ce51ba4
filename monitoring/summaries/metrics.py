"""Prometheus figures of transactions, read at each scrape from the totals the feed keeps (a few rows)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from monitoring.summaries.models import MonitoredInterface, TransactionStatus, TransactionTotal


def transaction_metrics() -> Iterator[Metric]:
    counts = GaugeMetricFamily("portal_transactions", "Transactions by interface and status.", labels=["interface", "status"])
    values = GaugeMetricFamily(
        "portal_transactions_value",
        "Value of the transactions by interface, status and currency.",
        labels=["interface", "status", "currency"],
    )
    codes = dict(MonitoredInterface.objects.values_list("id", "code"))
    totals: dict[tuple[str, str], int] = {(code, status): 0 for code in codes.values() for status in TransactionStatus.values}
    # A total whose transactions all moved on (or were pruned) stays as a zero row: not a series.
    rows = (
        TransactionTotal.objects.exclude(count=0)
        .values_list("interface_id", "status", "currency", "count", "value")
        .order_by("interface_id", "status", "currency")
    )
    for interface_id, status, currency, count, value in rows:
        totals[(codes[interface_id], status)] += count
        values.add_metric([codes[interface_id], status, currency], float(value))
    for (code, status), count in sorted(totals.items()):
        counts.add_metric([code, status], count)
        if not count:
            # No transaction of this interface and status yet: a zero series with no currency,
            # so every interface's value is there from the first scrape (and sums to 0).
            values.add_metric([code, status, ""], 0)
    yield counts
    yield values
