from __future__ import annotations

import datetime as dt

import pytest

from portal.models import Heartbeat
from portal.publisher import outbox_publish_all
from portal.services import outbox_enqueue
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db


def sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line == name:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_are_served_at_both_paths_from_loopback(client):
    for path in ("/metrics", "/metrics/"):
        answer = client.get(path, REMOTE_ADDR="127.0.0.1")
        assert answer.status_code == 200
        assert "portal_outbox_messages" in answer.content.decode()


def test_metrics_are_refused_from_other_addresses(client, settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "10.0.0.0/8"]
    assert client.get("/metrics/", REMOTE_ADDR="192.168.1.20").status_code == 403
    assert client.get("/metrics/", REMOTE_ADDR="10.2.3.4").status_code == 200


def test_portal_figures_come_from_the_database(client, control_queue_file, now):
    now("2026-03-02T10:00:00Z")
    Heartbeat.objects.create(id=1, last_tick_at=dt.datetime(2026, 3, 2, 9, 59, tzinfo=dt.UTC))
    outbox_enqueue(kind="control_message", dedupe_key="a", payload=control_message())
    outbox_publish_all()
    outbox_enqueue(kind="control_message", dedupe_key="b", payload=control_message())
    now("2026-03-02T10:00:30Z")

    text = client.get("/metrics/", REMOTE_ADDR="127.0.0.1").content.decode()

    assert sample(text, 'portal_outbox_messages{status="SENT"}') == 1
    assert sample(text, 'portal_outbox_messages{status="PENDING"}') == 1
    assert sample(text, 'portal_outbox_messages{status="FAILED"}') == 0
    assert sample(text, "portal_outbox_oldest_pending_age_seconds") == 30
    assert sample(text, 'portal_messages_published_total{kind="control_message"}') == 1
    assert sample(text, "portal_heartbeat_last_timestamp_seconds") == dt.datetime(
        2026, 3, 2, 9, 59, tzinfo=dt.UTC
    ).timestamp()


EVERY_METRIC = [
    "portal_jobs",
    "portal_jobs_running",
    "portal_batches",
    "portal_scheduler_tasks",
    "portal_heartbeat_last_timestamp_seconds",
    "portal_outbox_messages",
    "portal_outbox_oldest_pending_age_seconds",
    "portal_messages_published_total",
    "portal_transactions_value",
    "portal_transactions",
]


def test_every_named_metric_is_present_on_an_empty_portal(client):
    text = client.get("/metrics/", REMOTE_ADDR="127.0.0.1").content.decode()
    for name in EVERY_METRIC:
        assert f"# TYPE {name} " in text, name
        assert any(line.startswith((name + " ", name + "{")) for line in text.splitlines()), f"{name} has no sample"
    assert sample(text, 'portal_jobs_running{spool="",step=""}') == 0
    assert sample(text, 'portal_transactions_value{currency="",interface="PAYMENTS_GATEWAY",status="PENDING"}') == 0
    assert sample(text, 'portal_jobs{spool="",status="Zombie"}') == 0
    assert sample(text, 'portal_batches{state="open"}') == 0
    assert sample(text, 'portal_batches{state="delayed"}') == 0
    assert sample(text, 'portal_scheduler_tasks{state="ACTIVE"}') == 0
    assert sample(text, 'portal_transactions{interface="PAYMENTS_GATEWAY",status="PENDING"}') == 0



def test_with_a_token_set_metrics_need_it_even_from_an_allowed_address(client, settings):
    settings.METRICS_TOKEN = "s3cret-scraper-token"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    good = {"HTTP_AUTHORIZATION": "Bearer s3cret-scraper-token"}
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", **good).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", **good).status_code == 403  # and only from the allowed addresses


def test_request_metrics_of_every_worker_are_summed_in_multiprocess_mode(client, monkeypatch, tmp_path):
    """Under gunicorn (gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR) a scrape reads every worker's files."""
    from prometheus_client import CollectorRegistry, Counter
    from prometheus_client.values import MultiProcessValue

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for pid in (101, 102):  # two workers, each counting one request
        monkeypatch.setattr("prometheus_client.values.ValueClass", MultiProcessValue(process_identifier=lambda pid=pid: pid))
        monkeypatch.setattr("prometheus_client.metrics.values.ValueClass", MultiProcessValue(process_identifier=lambda pid=pid: pid))
        Counter("portal_test_requests", "requests", registry=CollectorRegistry()).inc()
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert sample(text, "portal_test_requests_total") == 2
    assert "portal_outbox_messages" in text  # the domain figures too
