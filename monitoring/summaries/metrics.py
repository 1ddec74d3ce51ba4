"""Prometheus figures of transactions, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Sum
from prometheus_client.core import GaugeMetricFamily, Metric

from monitoring.summaries.models import MonitoredInterface, Transaction, TransactionStatus


def transaction_metrics() -> Iterator[Metric]:
    counts = GaugeMetricFamily("portal_transactions", "Transactions by interface and status.", labels=["interface", "status"])
    values = GaugeMetricFamily(
        "portal_transactions_value",
        "Value of the transactions by interface, status and currency.",
        labels=["interface", "status", "currency"],
    )
    codes = dict(MonitoredInterface.objects.values_list("id", "code"))
    totals: dict[tuple[str, str], int] = {(code, status): 0 for code in codes.values() for status in TransactionStatus.values}
    rows = (
        Transaction.objects.values_list("interface_id", "status", "currency")
        .annotate(n=Count("id"), value=Sum("amount"))
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
