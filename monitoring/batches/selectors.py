"""Reads of the batch monitor that span relations: for the API, the admin and the demo."""

from __future__ import annotations

from django.db.models import Case, CharField, Count, F, Prefetch, QuerySet, Value, When

from monitoring.batches.models import (
    AlertState,
    BatchAlert,
    BatchConfig,
    BatchFile,
    BatchSource,
    BatchWindow,
    WindowStatus,
)
from portal.lib.times import iso_utc


def configs_for_listing() -> QuerySet[BatchConfig]:
    return BatchConfig.objects.select_related("interface").prefetch_related(
        Prefetch("sources", queryset=BatchSource.objects.order_by("position", "id"))
    )


def windows_for_listing() -> QuerySet[BatchWindow]:
    """Windows with their config, sources, counted files and ``alert_state`` (the config's
    alert state when this window is the one it is about, else NONE)."""
    return (
        BatchWindow.objects.select_related("config")
        .prefetch_related(
            Prefetch("config__sources", queryset=BatchSource.objects.order_by("name")),
            Prefetch("files", queryset=BatchFile.objects.filter(counted=True).only("id", "window_id", "source_name"), to_attr="counted_files"),
        )
        .annotate(
            alert_state=Case(
                When(config__alert__window_id=F("id"), then=F("config__alert__state")),
                default=Value(AlertState.NONE),
                output_field=CharField(),
            )
        )
    )


def window_received_sources(window: BatchWindow) -> list[str]:
    files = getattr(window, "counted_files", None)
    if files is None:
        files = window.files.filter(counted=True)
    return sorted(f.source_name for f in files)


def window_missing_sources(window: BatchWindow) -> list[str]:
    """The config's sources this window has not received; nothing once it is COMPLETED."""
    if window.status == WindowStatus.COMPLETED:
        return []
    received = set(window_received_sources(window))
    return sorted(s.name for s in window.config.sources.all() if s.name not in received)


def held_arrivals(model: type[BatchFile] = BatchFile) -> QuerySet[BatchFile]:
    """FUTURE_WINDOW arrivals still waiting, oldest extract first within a config."""
    return (
        model.objects.filter(held=True)
        .select_related("config", "config__latest_window")
        .order_by("config__tenant", "config__name", "extract_timestamp", "id")
    )


def held_blocker(file: BatchFile) -> dict:
    """The window a held arrival waits behind: the config's OPEN latest window, or the next
    one that no arrival has opened yet."""
    window, start, end = file.config.current_window(file.config.latest_window, file.extract_timestamp)
    if window is not None:
        return {"window_id": window.id, "window_start": start, "window_end": end, "status": window.status}
    return {"window_id": None, "window_start": start, "window_end": end, "status": None}


def held_arrivals_listing(*, limit: int = 200) -> list[dict]:
    """Held arrivals with the window each waits behind (the console's batch panel); one query."""
    return [
        {
            "id": file.id,
            "tenant": file.config.tenant,
            "config": file.config.name,
            "source": file.source_name,
            "extract_timestamp": iso_utc(file.extract_timestamp),
            "received_at": iso_utc(file.received_at),
            "blocked_by": {
                **(blocker := held_blocker(file)),
                "window_start": iso_utc(blocker["window_start"]),
                "window_end": iso_utc(blocker["window_end"]),
            },
        }
        for file in held_arrivals()[:limit]
    ]


def alerting_batches(*, limit: int = 200) -> list[dict]:
    """Configs alerting AT_RISK, OPEN or DELAYED, with the window, SLA and missing sources (the monitor's panel).

    The window's own status is told apart from the alert state: a window an operator failed
    stays in the alert until the next scan, and the panel says it was failed, by whom and why.
    """
    alerts = (
        BatchAlert.objects.exclude(state=AlertState.NONE)
        .select_related("config", "window")
        .prefetch_related(
            Prefetch("config__sources", queryset=BatchSource.objects.order_by("name")),
            Prefetch("window__files", queryset=BatchFile.objects.filter(counted=True).only("id", "window_id", "source_name"), to_attr="counted_files"),
        )
        .order_by("window__window_end", "config__tenant", "config__name")[:limit]
    )
    return [
        {
            "tenant": alert.config.tenant,
            "config": alert.config.name,
            "state": alert.state,
            "window_id": alert.window_id,
            "window_start": iso_utc(alert.window.window_start) if alert.window else None,
            "window_end": iso_utc(alert.window.window_end) if alert.window else None,
            "sla": iso_utc(alert.window.sla) if alert.window else None,
            "missing_sources": window_missing_sources(alert.window) if alert.window else [],
            "window_status": alert.window.status if alert.window else None,
            "may_fail": alert.window is not None and not alert.window.is_finished,  # batch_window_fail's precondition
            "failed_at": iso_utc(alert.window.failed_at) if alert.window else None,
            "failed_by": alert.window.failed_by if alert.window else "",
            "fail_reason": alert.window.fail_reason if alert.window else "",
            "last_message_at": iso_utc(alert.last_message_at),
        }
        for alert in alerts
    ]


def alerting_counts() -> dict[str, int]:
    counts = dict(BatchAlert.objects.exclude(state=AlertState.NONE).values_list("state").annotate(n=Count("config")).order_by())
    return {state: counts.get(state, 0) for state in (AlertState.AT_RISK, AlertState.OPEN, AlertState.DELAYED)}
