"""Reads of the monitoring app that span relations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitoring.models import FIGURE_EVENTS, MonitoredInterface, ServiceSummary

# --- summary figures (issue 5) --------------------------------------------------------


@dataclass(frozen=True)
class LatestFigures:
    """The figures of the last summary that carried any for an interface."""

    summary_id: int
    task: str
    event: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    emitted_at: dt.datetime
    totals: list[dict]  # as published: {"currency", "pending_count", "pending_value", ...}


def interface_latest_figures(interface: MonitoredInterface) -> LatestFigures | None:
    """The newest End or Invoked summary of ``interface`` (by interval end, any task); None before the first."""
    summary = (
        ServiceSummary.objects.filter(interface=interface, event__in=FIGURE_EVENTS)
        .order_by("-interval_end", "-emitted_at", "-id")
        .first()
    )
    if summary is None:
        return None
    return LatestFigures(
        summary_id=summary.id,
        task=summary.task,
        event=summary.event,
        interval_start=summary.interval_start,
        interval_end=summary.interval_end,
        emitted_at=summary.emitted_at,
        totals=summary.totals,
    )


# --- the monitor's charts -----------------------------------------------------------------


def summary_chart_series(*, points_per_interface: int = 60) -> list[dict]:
    """Pending and completed value per interface and currency, from the recent summaries.

    One small query per interface (the newest summaries first, by the
    interface/interval-end index), so the cost does not grow with history.
    """
    series: dict[tuple[str, str], list[dict]] = {}
    for interface in MonitoredInterface.objects.order_by("code"):
        recent = (
            ServiceSummary.objects.filter(interface=interface, event__in=FIGURE_EVENTS)
            .order_by("-interval_end", "-id")
            .values("interval_end", "totals")[:points_per_interface]
        )
        for summary in reversed(list(recent)):
            for row in summary["totals"]:
                series.setdefault((interface.code, row["currency"]), []).append(
                    {
                        "t": summary["interval_end"].isoformat().replace("+00:00", "Z"),
                        "pending_value": row["pending_value"],
                        "completed_value": row["completed_value"],
                    }
                )
    return [
        {"interface": code, "currency": currency, "points": points} for (code, currency), points in sorted(series.items())
    ]
