"""DOMAIN §7 end to end: conditions open episodes, rules send them through a real SMTP server and a real webhook.

Each scenario is played as an operator would replay it: `heartbeat --once --now T`
then `publish_outbox --now T`; nothing sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from portal import clock
from portal.alerts.models import AlertEpisode, AlertState
from portal.models import MessageStatus, OutboundMessage
from scheduling.scheduler.services import scheduler_task_create
from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import job_add, job_reset, job_start
from tests.alerts.conftest import SECRET, publish

pytestmark = pytest.mark.django_db

BODY_FIELDS = {"alert_id", "kind", "event", "state", "subject", "summary", "opened_at", "at", "url"}


def events(posts: list[dict], kind: str | None = None) -> list[str]:
    return [p["event"] for p in posts if kind is None or p["kind"] == kind]


def failing_job(load_spool, at: str) -> Job:
    """A job whose step returns 1 with no errornext: in Error after one attempt (run in-process)."""
    clock.set_now(clock.parse_instant(at))
    spool = load_spool("[10]\ntext=Initialize\ncommand=false\n")
    job = job_add(spool=spool, state=10, actor="test")
    job_start(job=job, actor="test", named=False)
    jobs_dispatch()
    job.refresh_from_db()
    assert job.status == JobStatus.ERROR
    return job


def test_a_delayed_batch_then_recovered_sends_opened_then_resolved_to_both_channels_once_each(
    make_config, arrive, rule, receiver, smtp, heartbeat
):
    rule(kinds=["BATCH_OPEN", "BATCH_DELAYED"])
    make_config()  # GL_DAILY (acme): gl_lines and gl_headers, 24 h windows, 2 h max wait
    clock.set_now(clock.parse_instant("2026-03-02T01:00:00Z"))
    arrive("gl_lines", "2026-03-02T01:00:00Z")  # window [03-02 01:00, 03-03 01:00), SLA 03-03 03:00
    scheduler_task_create(actor="test", name="batch-scan", subtype="BATCH_MONITOR", interval_seconds=600)

    heartbeat("2026-03-03T03:30:00Z")  # past the SLA with gl_headers missing: DELAYED
    heartbeat("2026-03-03T03:45:00Z")  # the same state: nothing new
    arrive("gl_headers", "2026-03-02T01:00:00Z")
    arrive("gl_lines", "2026-03-03T01:05:00Z")  # the next window begins: recovered
    heartbeat("2026-03-03T04:00:00Z")
    heartbeat("2026-03-03T04:15:00Z")
    publish("2026-03-03T04:20:00Z")

    assert [(p["event"], p["kind"], p["subject"]) for p in receiver.posts()] == [
        ("opened", "BATCH_DELAYED", "batch:acme/GL_DAILY"),
        ("resolved", "BATCH_DELAYED", "batch:acme/GL_DAILY"),
    ]
    assert smtp.subjects() == [
        "[portal] opened: BATCH_DELAYED batch:acme/GL_DAILY",
        "[portal] resolved: BATCH_DELAYED batch:acme/GL_DAILY",
    ]
    assert all(sorted(to) == ["lead@example.com", "ops@example.com"] for to, _ in smtp.mails)
    opened = receiver.posts()[0]
    assert "gl_headers" in opened["summary"] and opened["url"].endswith(f"/monitor/?alert={opened['alert_id']}")
    assert AlertEpisode.objects.get(kind="BATCH_DELAYED").state == AlertState.RESOLVED


def test_a_job_in_error_is_told_again_after_repeat_minutes_and_not_after_acknowledgement(
    load_spool, rule, receiver, heartbeat, operator, api_client_for
):
    rule(channel_names=("hook",), kinds=["JOB_ERROR"], repeat_minutes=10)
    job = failing_job(load_spool, "2026-03-02T10:00:00Z")

    heartbeat("2026-03-02T10:00:00Z")
    heartbeat("2026-03-02T10:09:59Z")
    assert events(receiver.posts()) == ["opened"]
    heartbeat("2026-03-02T10:10:00Z")
    heartbeat("2026-03-02T10:15:00Z")
    assert events(receiver.posts()) == ["opened", "repeated"]

    alert = AlertEpisode.objects.get(kind="JOB_ERROR")
    answer = api_client_for(operator).post(f"/api/v1/alerts/{alert.id}/acknowledge/", {"reason": "looking at it"}, format="json")
    assert answer.status_code == 200, answer.content
    for at in ("2026-03-02T10:20:00Z", "2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z"):
        heartbeat(at)

    assert events(receiver.posts()) == ["opened", "repeated", "acknowledged"]
    assert {p["subject"] for p in receiver.posts()} == {f"job:{job.id}"}
    assert receiver.posts()[-1]["state"] == "ACKNOWLEDGED"


def test_an_acknowledgement_until_a_time_ends_then_and_repeats_resume(load_spool, rule, receiver, heartbeat, operator):
    from portal.alerts.services import alert_acknowledge

    rule(channel_names=("hook",), kinds=["JOB_ERROR"], repeat_minutes=10)
    failing_job(load_spool, "2026-03-02T10:00:00Z")
    alert = AlertEpisode.objects.get(kind="JOB_ERROR")
    alert_acknowledge(actor=operator, alert=alert, reason="bank is late", until=clock.parse_instant("2026-03-02T10:30:00Z"))

    heartbeat("2026-03-02T10:20:00Z")
    heartbeat("2026-03-02T10:30:00Z")

    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN and alert.acknowledge_reason == "bank is late"
    assert events(receiver.posts()) == ["opened", "acknowledged", "repeated"]


def test_escalation_after_escalate_after_minutes_reaches_the_second_channel_once(load_spool, rule, receiver, smtp, heartbeat, operator):
    rule(channel_names=("hook",), kinds=["JOB_ERROR"], escalate_after_minutes=15, escalate_to=("mail",))
    job = failing_job(load_spool, "2026-03-02T10:00:00Z")

    for at in ("2026-03-02T10:14:00Z", "2026-03-02T10:15:00Z", "2026-03-02T10:16:00Z", "2026-03-02T11:00:00Z"):
        heartbeat(at)
    assert smtp.subjects() == [f"[portal] escalated: JOB_ERROR job:{job.id}"]

    job_reset(job=job, actor=operator, reason="fixed the input")
    publish("2026-03-02T11:01:00Z")

    assert events(receiver.posts()) == ["opened", "resolved"]  # the first channel is not told of the escalation
    assert smtp.subjects()[1:] == [f"[portal] resolved: JOB_ERROR job:{job.id}"]  # those escalated to hear the end


def test_the_webhook_body_is_the_contract_and_its_signature_verifies(load_spool, rule, receiver, heartbeat):
    rule(channel_names=("hook",), kinds=["JOB_ERROR"])
    job = failing_job(load_spool, "2026-03-02T10:00:00Z")
    heartbeat("2026-03-02T10:00:05Z")

    [request] = [r for r in receiver.requests if r.method == "POST"]
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Portal-Signature"] == expected
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert set(body) == BODY_FIELDS
    assert body | {"summary": None, "url": None} == {
        "alert_id": AlertEpisode.objects.get(kind="JOB_ERROR").id,
        "kind": "JOB_ERROR",
        "event": "opened",
        "state": "OPEN",
        "subject": f"job:{job.id}",
        "summary": None,
        "opened_at": "2026-03-02T10:00:00Z",
        "at": "2026-03-02T10:00:00Z",
        "url": None,
    }
    assert "is Error: return code 1" in body["summary"]


def test_a_receiver_down_for_a_while_then_back_loses_and_duplicates_nothing(load_spool, rule, receiver, smtp, operator):
    rule(kinds=["JOB_ERROR"])
    receiver.stop()
    job = failing_job(load_spool, "2026-03-02T10:00:00Z")
    for second in range(0, 40, 3):
        publish(f"2026-03-02T10:00:{second:02d}Z")
    job_reset(job=job, actor=operator, reason="rerun")
    publish("2026-03-02T10:00:45Z")

    assert smtp.subjects() == [f"[portal] opened: JOB_ERROR job:{job.id}", f"[portal] resolved: JOB_ERROR job:{job.id}"]  # mail went on
    hook = OutboundMessage.objects.filter(kind="NOTIFICATION", payload__channel="ops-hook")
    assert set(hook.values_list("status", flat=True)) == {MessageStatus.PENDING}
    assert hook.order_by("id").first().attempts > 1 and hook.order_by("id").last().attempts == 0  # held behind the first

    receiver.start()
    for minute in range(1, 8):
        publish(f"2026-03-02T10:{minute:02d}:00Z")

    assert [(p["event"], p["subject"]) for p in receiver.posts()] == [("opened", f"job:{job.id}"), ("resolved", f"job:{job.id}")]
    assert set(hook.values_list("status", flat=True)) == {MessageStatus.SENT}


def test_an_episode_that_matches_no_rule_is_still_listed_and_tells_nobody(load_spool, receiver, viewer, api_client_for):
    job = failing_job(load_spool, "2026-03-02T10:00:00Z")
    publish("2026-03-02T10:00:01Z")

    rows = api_client_for(viewer).get("/api/v1/alerts/", {"kind": "JOB_ERROR"}).json()["results"]
    assert [(r["subject"], r["state"], r["spool"]) for r in rows] == [(f"job:{job.id}", "OPEN", "billing")]
    assert receiver.requests == [] and not OutboundMessage.objects.filter(kind="NOTIFICATION").exists()


def test_an_apprise_channel_reaches_its_service(load_spool, receiver, control_queue_file):
    """Apprise's json:// service posts to the loopback receiver: the path every Apprise URL takes."""
    from portal.alerts.config import alert_rule_create, notification_channel_create

    channel = notification_channel_create(actor="test", name="apprise", kind="apprise", target=f"json://127.0.0.1:{receiver.port}/apprise")
    alert_rule_create(actor="test", name="all", channels=[channel])
    job = failing_job(load_spool, "2026-03-02T10:00:00Z")
    publish("2026-03-02T10:00:01Z")

    [request] = [r for r in receiver.requests if r.method == "POST"]
    assert request.path == "/apprise"
    posted = request.json()
    assert posted["title"] == f"[portal] opened: JOB_ERROR job:{job.id}" and "return code 1" in posted["message"]
    assert OutboundMessage.objects.get(kind="NOTIFICATION").status == MessageStatus.SENT
