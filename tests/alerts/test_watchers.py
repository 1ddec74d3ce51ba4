"""Each process watches another (DOMAIN §7): the dispatcher the clock, the clock the dispatcher, and both the outbox.

Also where the conditions of jobs and scheduler tasks open and end their episodes.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.management import call_command

from portal import clock
from portal.alerts.models import AlertEpisode, AlertState
from portal.backends import SendResult
from portal.models import Heartbeat, MessageStatus, OutboundMessage, OutboxLane
from portal.publisher import outbox_publish
from portal.services import outbox_enqueue, outbox_retry
from scheduling.scheduler.models import SchedulerTask, TaskState
from scheduling.scheduler.services import scheduler_task_create
from scheduling.workflows.dispatcher import jobs_mark_zombies
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import job_add, job_reset, scheduler_shutdown
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db


def heartbeat_once(at: str) -> None:
    call_command("heartbeat", "--once", "--now", at, verbosity=0)


def dispatcher_once(at: str) -> None:
    call_command("run_dispatcher", "--once", "--now", at, verbosity=0)


def episodes(kind: str) -> list[tuple[str, str]]:
    return list(AlertEpisode.objects.filter(kind=kind).order_by("id").values_list("subject", "state"))


def test_the_clock_stopped_for_three_intervals_is_raised_by_the_dispatcher_and_ends_when_ticks_resume(settings):
    settings.HEARTBEAT_SECONDS = 60
    heartbeat_once("2026-03-02T10:00:00Z")
    dispatcher_once("2026-03-02T10:02:59Z")
    assert episodes("HEARTBEAT_STALE") == []

    dispatcher_once("2026-03-02T10:03:01Z")
    assert episodes("HEARTBEAT_STALE") == [("heartbeat", "OPEN")]
    assert "2026-03-02T10:00:00Z" in AlertEpisode.objects.get(kind="HEARTBEAT_STALE").summary

    heartbeat_once("2026-03-02T10:05:00Z")
    assert episodes("HEARTBEAT_STALE") == [("heartbeat", "RESOLVED")]
    dispatcher_once("2026-03-02T10:05:10Z")
    assert episodes("HEARTBEAT_STALE") == [("heartbeat", "RESOLVED")]


def test_the_dispatcher_stopped_is_raised_by_the_clock_and_ends_when_it_is_seen_again():
    dispatcher_once("2026-03-02T10:00:00Z")
    heartbeat_once("2026-03-02T10:00:30Z")
    assert episodes("DISPATCHER_STALE") == []

    heartbeat_once("2026-03-02T10:00:31Z")
    assert episodes("DISPATCHER_STALE") == [("dispatcher", "OPEN")]

    dispatcher_once("2026-03-02T10:01:00Z")
    heartbeat_once("2026-03-02T10:01:05Z")
    assert episodes("DISPATCHER_STALE") == [("dispatcher", "RESOLVED")]


def test_a_dispatcher_silent_while_the_scheduler_is_shut_down_raises_nothing(administrator):
    dispatcher_once("2026-03-02T10:00:00Z")
    scheduler_shutdown(actor=administrator, reason="maintenance")
    heartbeat_once("2026-03-02T11:00:00Z")
    assert episodes("DISPATCHER_STALE") == []


def test_healthz_reports_the_dispatcher_and_fails_while_it_is_stale(client):
    dispatcher_once("2026-03-02T10:00:00Z")
    clock.set_now(clock.parse_instant("2026-03-02T10:00:20Z"))
    body = client.get("/healthz").json()
    assert (body["status"], body["dispatcher_seen_at"], body["dispatcher_stale"]) == ("ok", "2026-03-02T10:00:00Z", False)

    clock.set_now(clock.parse_instant("2026-03-02T10:01:00Z"))
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["dispatcher_stale"] is True


def test_every_tick_ends_with_one_get_of_the_ping_url(settings, receiver):
    settings.HEARTBEAT_PING_URL = receiver.url + "/ping/4f1c"
    for at in ("2026-03-02T10:00:00Z", "2026-03-02T10:01:00Z", "2026-03-02T10:02:00Z"):
        heartbeat_once(at)

    assert [(r.method, r.path) for r in receiver.requests] == [("GET", "/ping/4f1c")] * 3


def test_a_ping_url_that_does_not_answer_never_stops_the_tick(settings, receiver):
    settings.HEARTBEAT_PING_URL = receiver.url + "/ping"
    receiver.stop()
    heartbeat_once("2026-03-02T10:00:00Z")
    heartbeat_once("2026-03-02T10:01:00Z")
    assert Heartbeat.objects.get().ticks == 2


class Refusing:
    def send(self, messages):
        return [SendResult(m.id, False, error="queue refused it", permanent=True) for m in messages]


class Down:
    def send(self, messages):
        raise ConnectionError("queue endpoint unreachable")


def test_a_failed_message_opens_outbox_failed_until_none_is_left(now, operator, control_queue_file):
    now("2026-03-02T10:00:00Z")
    outbox_enqueue(kind="control_message", dedupe_key="m1", payload=control_message())
    outbox_publish(backend=Refusing())
    assert episodes("OUTBOX_FAILED") == [("outbox", "OPEN")]
    assert "m1" in AlertEpisode.objects.get(kind="OUTBOX_FAILED").summary

    outbox_retry(messages=OutboundMessage.objects.all(), actor=operator, reason="queue fixed")
    outbox_publish()
    assert OutboundMessage.objects.get(dedupe_key="m1").status == MessageStatus.SENT
    assert episodes("OUTBOX_FAILED") == [("outbox", "RESOLVED")]


def test_a_queue_down_for_outbox_stall_seconds_opens_outbox_stalled_until_messages_flow(now, settings, control_queue_file):
    settings.OUTBOX_STALL_SECONDS = 120
    start = now("2026-03-02T10:00:00Z")
    outbox_enqueue(kind="control_message", dedupe_key="m1", payload=control_message())
    for seconds in (0, 30, 119):
        clock.set_now(start + dt.timedelta(seconds=seconds))
        OutboxLane.objects.update(next_attempt_at=clock.now())
        outbox_publish(backend=Down())
    assert episodes("OUTBOX_STALLED") == []

    heartbeat_once("2026-03-02T10:02:00Z")  # the clock looks too, with no publisher running
    assert episodes("OUTBOX_STALLED") == [("control-queue", "OPEN")]
    assert "ConnectionError" in AlertEpisode.objects.get(kind="OUTBOX_STALLED").summary

    clock.set_now(start + dt.timedelta(seconds=130))
    OutboxLane.objects.update(next_attempt_at=clock.now())
    outbox_publish()
    assert episodes("OUTBOX_STALLED") == [("control-queue", "RESOLVED")]


def test_a_job_entering_zombie_opens_its_alert_and_a_reset_ends_it(now, load_spool, operator):
    now("2026-03-02T10:00:00Z")
    job = job_add(spool=load_spool("[10]\ntext=Initialize\ncommand=true\n"), state=10, actor="test")
    Job.objects.filter(id=job.id).update(
        status=JobStatus.RUNNING, claim_token=uuid.uuid4(), lease_until=clock.now() - dt.timedelta(seconds=1),
        lapse_seen_at=clock.now() - dt.timedelta(minutes=1),  # a sweep saw the lease lapsed a while ago (DOMAIN §5)
    )
    assert jobs_mark_zombies() == 1
    assert episodes("JOB_ZOMBIE") == [(f"job:{job.id}", "OPEN")]
    assert AlertEpisode.objects.get().spool == "billing"

    job_reset(job=job, actor=operator, reason="the worker host was rebooted")
    assert episodes("JOB_ZOMBIE") == [(f"job:{job.id}", "RESOLVED")]


def test_a_failing_task_has_one_episode_across_its_retries_that_ends_when_it_runs_again(recorder, tick):
    from tests.scheduling.actions import RECORDER

    clock.set_now(clock.parse_instant("2026-03-02T10:00:00Z"))
    scheduler_task_create(actor="test", name="summary", subtype="BATCH_MONITOR", interval_seconds=300)
    RECORDER.failing["summary"] = RuntimeError("database of the interface refused the query")
    tick("2026-03-02T10:05:00Z")
    assert episodes("TASK_ERROR") == [("task:summary", "OPEN")]
    tick("2026-03-02T10:06:00Z")  # the retry fails too: the same episode
    assert episodes("TASK_ERROR") == [("task:summary", "OPEN")]
    assert "refused the query" in AlertEpisode.objects.get().summary

    RECORDER.failing.clear()
    tick("2026-03-02T10:30:00Z")
    assert SchedulerTask.objects.get().state == TaskState.ACTIVE
    assert episodes("TASK_ERROR") == [("task:summary", "RESOLVED")]
    assert AlertEpisode.objects.get().state == AlertState.RESOLVED


@pytest.fixture
def tick():
    from scheduling.scheduler.heartbeat import heartbeat_tick

    def run(at: str) -> None:
        clock.set_now(clock.parse_instant(at))
        heartbeat_tick()

    return run
