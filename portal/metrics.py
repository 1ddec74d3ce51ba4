"""Prometheus metrics: every domain figure is read from the database at scrape time.

Each app contributes a function yielding metric families, named in
``settings.METRICS_COLLECTORS``; the web process thus reports what the workers
did, and several web processes agree. Every named metric is present even with
no data yet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from django.utils.module_loading import import_string
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from portal import clock
from portal.alerts.tallies import tallies
from portal.models import Heartbeat, MessageStatus, OutboundMessage
from portal.publisher import PUBLISHED_TALLY
from portal.selectors import oldest_pending_at
from portal.validation import known_kinds


class DomainCollector:
    """Gathers the collectors named in settings at each scrape."""

    def describe(self) -> list[Metric]:
        # Without describe() the registry would collect (query the database) at registration.
        return []

    def collect(self) -> Iterator[Metric]:
        for path in settings.METRICS_COLLECTORS:
            yield from import_string(path)()


def portal_metrics() -> Iterator[Metric]:
    heartbeat = Heartbeat.objects.filter(id=Heartbeat.SINGLETON_ID).first()
    last_tick = GaugeMetricFamily(
        "portal_heartbeat_last_timestamp_seconds", "Unix time of the last heartbeat tick (0: never)."
    )
    last_tick.add_metric([], heartbeat.last_tick_at.timestamp() if heartbeat and heartbeat.last_tick_at else 0)
    yield last_tick

    counts = dict(OutboundMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
    by_status = GaugeMetricFamily("portal_outbox_messages", "Outbox messages by status.", labels=["status"])
    for status in MessageStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status

    oldest = oldest_pending_at()
    age = GaugeMetricFamily("portal_outbox_oldest_pending_age_seconds", "Age of the oldest pending message (0: none).")
    age.add_metric([], max((clock.now() - oldest).total_seconds(), 0) if oldest else 0)
    yield age

    published = CounterMetricFamily(
        "portal_messages_published", "Messages delivered to the control queue, by kind.", labels=["kind"]
    )
    sent = tallies(PUBLISHED_TALLY)  # counted when sent: pruning the rows lowers nothing (DOMAIN §9)
    # Every kind the portal can send, at 0 before its first message: rate() needs the series to exist.
    for kind in sorted(set(known_kinds()) | set(sent)):
        published.add_metric([kind], sent.get(kind, 0))
    yield published


def address_allowed(address: str, allowed: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A server listening on [::] sees IPv4 clients as ::ffff:a.b.c.d.
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowed)
