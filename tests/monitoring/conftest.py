"""Fixtures of the monitoring app's tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from portal import clock
from portal.lib.taskrun import TaskRun

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
