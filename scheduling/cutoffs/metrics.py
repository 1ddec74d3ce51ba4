"""Prometheus figures of the cut-offs (DOMAIN §8), read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from portal import clock
from scheduling.cutoffs.selectors import cutoff_states, cutoffs_listing


def cutoff_metrics() -> Iterator[Metric]:
    states = cutoff_states(cutoffs_listing(), now=clock.now())
    left = GaugeMetricFamily("portal_cutoff_seconds_left", "Seconds until each cut-off's next moment (none ahead: no sample).", labels=["cutoff"])
    count = GaugeMetricFamily("portal_cutoff_pending", "Transactions pending now on each cut-off's interface, by currency.", labels=["cutoff", "currency"])
    value = GaugeMetricFamily("portal_cutoff_pending_value", "Value pending now on each cut-off's interface, by currency.", labels=["cutoff", "currency"])
    for state in states:
        if state.seconds_left is not None:
            left.add_metric([state.cutoff.name], state.seconds_left)
        for currency, (n, amount) in state.pending.items():
            count.add_metric([state.cutoff.name, currency], n)
            value.add_metric([state.cutoff.name, currency], float(amount))
    yield from (left, count, value)
