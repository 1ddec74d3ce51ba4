from __future__ import annotations

import datetime as dt

import pytest

from portal import clock
from portal.models import Heartbeat, OutboundMessage
from portal.publisher import outbox_publish
from portal.services import outbox_enqueue
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db


def test_healthy_portal_answers_200_with_its_figures(client, now):
    now("2026-03-02T10:00:00Z")
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "database": True,
        "last_heartbeat_at": None,
        "heartbeat_stale": False,
        "outbox_pending": 0,
        "outbox_pending_capped": False,
        "outbox_oldest_pending_age_seconds": None,
        "outbox_failed": 0,
        "queue_backend_failing": False,
        "dispatcher_seen_at": None,
        "dispatcher_stale": False,
    }


def test_livez_answers_without_the_database(client, monkeypatch):
    monkeypatch.setattr("portal.selectors.database_reachable", lambda: False)
    assert client.get("/healthz").status_code == 503
    for path in ("/livez", "/livez/"):
        answer = client.get(path)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_a_silent_dispatcher_makes_the_portal_unready(client, now):
    from scheduling.workflows.models import SchedulerControl

    now("2026-03-02T10:00:00Z")
    SchedulerControl.objects.update_or_create(id=SchedulerControl.SINGLETON_ID, defaults={"dispatcher_seen_at": clock.now()})
    assert client.get("/healthz").status_code == 200
    now("2026-03-02T10:01:01Z")
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["dispatcher_stale"] is True


class RefusingQueue:
    def send(self, messages):
        raise ConnectionError("connection refused")


def test_a_failing_queue_backend_makes_the_portal_unready_at_once(client, now, control_queue_file):
    now("2026-03-02T10:00:00Z")
    outbox_enqueue(kind="control_message", dedupe_key="k", payload=control_message())
    outbox_publish(backend=RefusingQueue())
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["queue_backend_failing"] is True
    now("2026-03-02T10:00:03Z")  # the lane's wait is over: the queue takes it
    assert outbox_publish().sent == 1
    assert client.get("/healthz").status_code == 200


def test_stale_heartbeat_answers_503(client, now, settings):
    settings.HEARTBEAT_SECONDS = 60
    Heartbeat.objects.create(id=1, last_tick_at=dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC))
    now("2026-03-02T10:02:59Z")
    assert client.get("/healthz").status_code == 200
    now("2026-03-02T10:03:01Z")
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["last_heartbeat_at"] == "2026-03-02T10:00:00Z"


def test_pending_outbox_age_is_reported_and_too_old_answers_503(client, now, settings):
    settings.HEALTHZ_OUTBOX_MAX_AGE_SECONDS = 600
    now("2026-03-02T10:00:00Z")
    outbox_enqueue(kind="control_message", dedupe_key="k", payload=control_message())
    now("2026-03-02T10:01:30Z")
    body = client.get("/healthz").json()
    assert body["outbox_pending"] == 1 and body["outbox_oldest_pending_age_seconds"] == 90.0
    now("2026-03-02T10:11:00Z")
    assert client.get("/healthz").status_code == 503
    assert OutboundMessage.objects.count() == 1


def test_a_deep_backlog_is_counted_up_to_the_cap_and_said_so(client, now, settings):
    settings.OUTBOX_PENDING_COUNT_CAP = 3
    now("2026-03-02T10:00:00Z")
    for i in range(3):
        outbox_enqueue(kind="control_message", dedupe_key=f"k{i}", payload=control_message(window_id=i + 1))
    assert (client.get("/healthz").json()["outbox_pending"], client.get("/healthz").json()["outbox_pending_capped"]) == (3, False)

    outbox_enqueue(kind="control_message", dedupe_key="k3", payload=control_message(window_id=4))
    body = client.get("/healthz").json()
    assert (body["outbox_pending"], body["outbox_pending_capped"]) == (3, True)
