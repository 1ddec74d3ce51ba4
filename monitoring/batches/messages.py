"""The control message of the batch monitor (DOMAIN §1), built from configs and windows.

``monitoring/schemas/control_message.schema.json`` defines it; the outbox validates
every message against it. Times: "YYYY-MM-DD HH:MM:SS" UTC at the top level, ISO-8601
UTC inside ``btch_dtl``, as existing control-service consumers read them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from monitoring.batches.models import BatchConfig, BatchWindow
from portal.lib.times import iso_utc

KIND = "control_message"
SCHEMA_VERSION = "1"
BUSINESS_EXCEPTION = "Business Exception"
TARGET_TRIGGER = "Target Trigger"
NOT_EXCEPTIONS = frozenset({"COMPLETED", "RECOVERED"})


def plain_utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def short_utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class WindowView:
    """The window a message is about: a stored one, or the next one no arrival has opened yet."""

    window: BatchWindow | None
    start: dt.datetime
    end: dt.datetime
    sla: dt.datetime
    received: int
    expected: int

    @classmethod
    def of(cls, window: BatchWindow) -> WindowView:
        return cls(window, window.window_start, window.window_end, window.sla, window.received_count, window.expected_count)

    @classmethod
    def upcoming(cls, config: BatchConfig, start: dt.datetime, end: dt.datetime, expected: int) -> WindowView:
        return cls(None, start, end, BatchWindow.sla_after(end, config.max_wait_hours), 0, expected)

    @property
    def label(self) -> str:
        return f"window {short_utc(self.start)} to {short_utc(self.end)}"


def control_message(
    *,
    state: str,
    config: BatchConfig,
    view: WindowView,
    now: dt.datetime,
    text: str,
    argument: str = "",
    missing: list[str] | tuple[str, ...] = (),
    sequence: int = 0,
) -> dict:
    """One control message; ``state`` is the word of ``btch_dtl.state`` and ``exceptionName``."""
    return {
        "uuid": str(uuid.uuid4()),
        "eventMessage": f"{config.name} ({config.tenant}): {text}",
        "eventMajor": "BATCHING",
        "eventMinor": config.name,
        "exceptionFlag": "N" if state in NOT_EXCEPTIONS else "Y",
        "exceptionType": BUSINESS_EXCEPTION,
        "exceptionName": state,
        "exceptionArgument": TARGET_TRIGGER if state == "COMPLETED" else argument,
        "entity": config.target_app,
        "version": SCHEMA_VERSION,
        "subEntity": {"workflow": config.target_workflow},
        "retryCount": sequence,
        "extractStartTimeStamp": plain_utc(view.start),
        "extractEndTimeStamp": plain_utc(view.end),
        "eventTimeStamp": plain_utc(now),
        "btch_dtl": {
            "state": state,
            "tenant": config.tenant,
            "config": config.name,
            "window_id": view.window.id if view.window is not None else None,
            "window_start": iso_utc(view.start),
            "window_end": iso_utc(view.end),
            "sla": iso_utc(view.sla),
            "missing_sources": list(missing),
            "received": view.received,
            "expected": view.expected,
        },
    }


# --- the sentences, one per state word --------------------------------------------


def at_risk_text(view: WindowView, late: list[tuple[str, dt.datetime]]) -> str:
    usual = "; ".join(
        f"{name} usually arrives by {at:%H:%M} UTC ({(at - view.start) // dt.timedelta(minutes=1)} min after the window start)"
        for name, at in late
    )
    return f"{view.label} is at risk: {usual}, and has not arrived yet"


def open_text(view: WindowView, missing: list[str]) -> str:
    return f"{view.label} still waits for {', '.join(missing)}"


def delayed_text(view: WindowView, missing: list[str]) -> str:
    if missing:
        return f"{view.label} is late: {', '.join(missing)} expected by {short_utc(view.sla)}"
    return f"the batch after {view.label} is late: its files were expected by {short_utc(view.sla)}"


def recovered_text(view: WindowView, status: str) -> str:
    return f"back on time: latest {view.label} is {status}"


def completed_text(view: WindowView, config: BatchConfig) -> str:
    return (
        f"{view.label} is complete ({view.received} of {view.expected} sources), "
        f"triggering {config.target_app} {config.target_workflow}"
    )


def duplicate_text(view: WindowView, source: str, extract: dt.datetime) -> str:
    return f"{source} (extract {plain_utc(extract)}) was already received for {view.label}"


def previous_text(view: WindowView, source: str, extract: dt.datetime, current: bool) -> str:
    if current:
        return f"{source} (extract {plain_utc(extract)}) falls before the current {view.label}"
    return f"{source} (extract {plain_utc(extract)}) is for {view.label}, which is no longer current"


def future_text(view: WindowView, source: str, extract: dt.datetime) -> str:
    return (
        f"{source} (extract {plain_utc(extract)}) falls after the current {view.label}; "
        "held until the windows before it are finished"
    )
