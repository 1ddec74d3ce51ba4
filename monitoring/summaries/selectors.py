"""Reads of the monitoring app that span relations."""

from __future__ import annotations

from monitoring.summaries.models import FIGURE_EVENTS, MonitoredInterface, ServiceSummary
from portal.lib.times import iso_utc

# --- summary figures (issue 5) --------------------------------------------------------


def interface_latest_figures(interface: MonitoredInterface) -> ServiceSummary | None:
    """The newest End or Invoked summary of ``interface`` (by interval end, any task); None before the first."""
    return (
        ServiceSummary.objects.filter(interface=interface, event__in=FIGURE_EVENTS)
        .order_by("-interval_end", "-emitted_at", "-id")
        .first()
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
                        "t": iso_utc(summary["interval_end"]),
                        "pending_value": row["pending_value"],
                        "completed_value": row["completed_value"],
                    }
                )
    return [
        {"interface": code, "currency": currency, "points": points} for (code, currency), points in sorted(series.items())
    ]
