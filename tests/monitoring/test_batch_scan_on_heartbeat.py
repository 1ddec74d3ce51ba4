"""The batch scan as the action of a BATCH_MONITOR task, driven by the heartbeat, end to end."""

from __future__ import annotations

import json

import pytest

from portal import clock
from portal.publisher import outbox_publish_all
from scheduling.scheduler.heartbeat import heartbeat_tick
from scheduling.scheduler.services import scheduler_task_create
from tests.portal.test_metrics import sample

pytestmark = pytest.mark.django_db


def tick(at: str) -> None:
    clock.set_now(clock.parse_instant(at))
    heartbeat_tick()


BATCH_ROW = ("tenant", "config", "state", "window_id", "window_start", "window_end", "sla", "missing_sources")


def test_open_then_delayed_batch_reaches_the_queue_the_monitor_and_the_metrics(
    make_config, arrive, control_queue_file, client, viewer
):
    make_config()  # GL_DAILY (acme): gl_lines and gl_headers, 24 h windows, 2 h max wait
    clock.set_now(clock.parse_instant("2026-03-02T01:00:00Z"))
    arrive("gl_lines", "2026-03-02T01:00:00Z")  # window [03-02 01:00, 03-03 01:00), SLA 03:00
    clock.set_now(clock.parse_instant("2026-03-03T01:00:00Z"))
    scheduler_task_create(actor="test", name="batch-scan", subtype="BATCH_MONITOR", interval_seconds=600)

    tick("2026-03-03T01:30:00Z")
    tick("2026-03-03T01:45:00Z")  # same state: nothing more
    tick("2026-03-03T03:30:00Z")
    outbox_publish_all()

    lines = [json.loads(line) for line in control_queue_file.read_text().splitlines()]
    control = [m for m in lines if "btch_dtl" in m]  # the queue also carries the HEARTBEAT_GAP of 01:45-03:30
    assert [m["btch_dtl"]["state"] for m in control] == ["OPEN", "DELAYED"]
    delayed = control[-1]
    assert delayed["btch_dtl"]["missing_sources"] == ["gl_headers"]
    assert delayed["exceptionFlag"] == "Y" and delayed["eventMinor"] == "GL_DAILY"

    client.force_login(viewer)
    batches = client.get("/monitor/data/").json()["batches"]
    assert [{key: batch[key] for key in BATCH_ROW} for batch in batches] == [
        {
            "tenant": "acme",
            "config": "GL_DAILY",
            "state": "DELAYED",
            "window_id": delayed["btch_dtl"]["window_id"],
            "window_start": "2026-03-02T01:00:00Z",
            "window_end": "2026-03-03T01:00:00Z",
            "sla": "2026-03-03T03:00:00Z",
            "missing_sources": ["gl_headers"],
        }
    ]
    assert (batches[0]["window_status"], batches[0]["may_fail"]) == ("OPEN", True)
    text = client.get("/metrics/", REMOTE_ADDR="127.0.0.1").content.decode()
    assert sample(text, 'portal_batches{state="delayed"}') == 1
    assert sample(text, 'portal_batches{state="open"}') == 0
