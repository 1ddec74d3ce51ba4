"""Reads of the alerts that several surfaces share: the console's open alerts, the metrics' counts."""

from __future__ import annotations

from django.db.models import Count

from portal.alerts.models import AlertEpisode, AlertKind
from portal.lib.times import iso_utc

OPEN_ALERTS_SHOWN = 100


def open_alerts(*, limit: int = OPEN_ALERTS_SHOWN) -> list[dict]:
    """Every unresolved episode, OPEN before ACKNOWLEDGED, newest first: what the console shows on top."""
    rows = AlertEpisode.objects.unresolved().order_by("state", "-id")[:limit]
    return [
        {
            "id": episode.id,
            "kind": episode.kind,
            "subject": episode.subject,
            "state": episode.state,
            "summary": episode.summary,
            "opened_at": iso_utc(episode.opened_at),
            "acknowledged_by": episode.acknowledged_by_name or None,
            "acknowledged_until": iso_utc(episode.acknowledged_until),
            "acknowledge_reason": episode.acknowledge_reason or None,
        }
        for episode in rows
    ]


def open_alert_counts() -> dict[str, int]:
    """Kind -> unresolved episodes, every kind present (0 when none)."""
    counts = dict(AlertEpisode.objects.unresolved().values_list("kind").annotate(n=Count("id")).order_by())
    return {kind: counts.get(kind, 0) for kind in AlertKind.values}
