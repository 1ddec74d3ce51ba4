"""Fixtures of the monitoring app's tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from monitoring.batches.models import BatchConfig
from monitoring.batches.placement import ArrivalResult
from monitoring.batches.services import arrivals_record, batch_config_create
from portal import clock
from portal.lib.taskrun import TaskRun
from portal.models import OutboundMessage

HOSTED = ("PAYMENT_ORIGINATOR", "BATCH_PAYMENT_ORIGINATOR")
INVOKED = ("LIQUIDITY_SERVICE", "REPAIR_SERVICE", "PAYMENTS_GATEWAY")


def transaction_item(reference: str, /, **fields) -> dict:
    """One item of a transaction feed, as the API takes it (a pending EUR payment unless told)."""
    item = {
        "interface": "PAYMENT_ORIGINATOR",
        "reference": reference,
        "amount": "10.00",
        "currency": "EUR",
        "status": "PENDING",
        "received_at": "2026-03-02T09:00:00Z",
        "completed_at": None,
    }
    item.update(fields)
    return item


@pytest.fixture
def task_run() -> Callable[..., TaskRun]:
    """A TaskRun as the scheduler would hand it to an action."""

    def build(
        start: str, end: str, interfaces: tuple[str, ...] = HOSTED, *, name: str = "summaries", subtype: str = ""
    ) -> TaskRun:
        subtype = subtype or ("HOSTED_SERVICE_MONITOR" if interfaces and interfaces[0] in HOSTED else "INVOKED_SERVICE_MONITOR")
        return TaskRun(
            task_id=1,
            task_name=name,
            subtype=subtype,
            interface_codes=interfaces,
            interval_start=clock.parse_instant(start),
            interval_end=clock.parse_instant(end),
        )

    return build


def iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- batch monitor ---------------------------------------------------------------------


@pytest.fixture
def make_config(db) -> Callable[..., BatchConfig]:
    """A config made through the service, with sensible defaults: 24 h windows, 2 h max wait."""

    def build(name: str = "GL_DAILY", tenant: str = "acme", sources: tuple[str, ...] = ("gl_lines", "gl_headers"), **fields) -> BatchConfig:
        values = {
            "tenant": tenant,
            "name": name,
            "window_hours": 24,
            "max_wait_hours": 2,
            "target_app": "ledger",
            "target_workflow": "post_gl",
            "exception_check": True,
            "active": True,
            "realert_minutes": None,
        }
        values.update(fields)
        return batch_config_create(actor="test", fields=values, sources=list(sources))

    return build


@pytest.fixture
def arrive() -> Callable[..., ArrivalResult]:
    """Post one arrival through the service: ``arrive("gl_lines", "2026-03-02T01:00:00Z")``."""

    def record(source: str, extract: str, tenant: str = "acme") -> ArrivalResult:
        [result] = arrivals_record(items=[{"tenant": tenant, "source": source, "extract_timestamp": extract}])
        return result

    return record


def control_messages(state: str | None = None) -> list[dict]:
    """Payloads of control messages in the outbox, oldest first, optionally of one state."""
    payloads = [m.payload for m in OutboundMessage.objects.filter(kind="control_message").order_by("id")]
    return [p for p in payloads if state is None or p["btch_dtl"]["state"] == state]


@pytest.fixture
def messages() -> Callable[..., list[dict]]:
    return control_messages
