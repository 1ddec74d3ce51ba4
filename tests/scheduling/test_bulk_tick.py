"""A tick with many due tasks claims them in one transaction and runs them a chunk at a time, with the same outcome."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from portal.alerts.models import AlertEpisode
from portal.models import AuditEntry
from scheduling.scheduler import heartbeat
from scheduling.scheduler.due import scheduler_tasks_run_claimed
from scheduling.scheduler.models import SchedulerTask, TaskState, TaskTransition
from scheduling.scheduler.services import scheduler_task_disable

pytestmark = pytest.mark.django_db

PER_TASK, BULK = 10_000, 1  # SCHEDULER_TICK_BULK_MIN for each path


def mixed_tasks(make_task, make_group, recorder, now) -> None:
    """Due, failing, retrying, closed for the weekend, never open, not yet due, suspended."""
    now("2026-03-06T09:00:00Z")  # a Friday
    weekdays = make_group("WEEKDAYS", timezone="UTC", hours=[("08:00", "18:00")])
    sundays = [(dt.date(2026, 3, 8) + dt.timedelta(weeks=n)).isoformat() for n in range(110)]
    never = make_group("NEVER", timezone="UTC", weekend_days=(1, 2, 3, 4, 5, 6), holidays=sundays)
    for n in range(4):
        make_task(f"due-{n}", interval_seconds=600)
    make_task("broken", interval_seconds=600)
    make_task("retrying", interval_seconds=60)
    make_task("weekday", interval_seconds=3600, calendar_groups=[weekdays])
    make_task("never", interval_seconds=600, calendar_groups=[never])
    make_task("later", interval_seconds=86400)
    recorder.failing.update({"broken": RuntimeError("ledger unreachable"), "retrying": RuntimeError("down")})
    now("2026-03-06T09:01:00Z")
    heartbeat.heartbeat_tick()  # "retrying" fails once: it is retried from ERROR below
    recorder.failing.pop("retrying")
    recorder.calls.clear()
    now("2026-03-06T19:00:00Z")  # after the weekday group's hours


def outcome(report) -> dict:
    """What a user sees of a tick: the report, each task's fields and transitions, the actions' rows, the alerts."""
    tasks = {
        t.name: (t.state, t.next_timeout_at, t.last_interval_end_at, t.last_fired_at, t.consecutive_failures,
                 t.last_error, t.last_error_at, t.claim_token is None, t.claimed_at, t.claim_expires_at)
        for t in SchedulerTask.objects.all()
    }
    transitions = sorted(
        (t.task.name, t.from_state, t.to_state, t.event, t.at, t.actor_name, t.note)
        for t in TaskTransition.objects.select_related("task")
    )
    actions = sorted(AuditEntry.objects.filter(action="test.action_ran").values_list("object_id", "after"))
    alerts = sorted(AlertEpisode.objects.values_list("kind", "subject", "state", "summary"))
    figures = (report.deferred, report.handed_off, report.outcomes)
    return {"report": figures, "tasks": tasks, "transitions": transitions, "actions": actions, "alerts": alerts}


def tick_with(settings, bulk_min: int, **options) -> dict:
    """One tick with either path, rolled back after its outcome is read."""
    settings.SCHEDULER_TICK_BULK_MIN = bulk_min
    with transaction.atomic():
        seen = outcome(heartbeat.heartbeat_tick(**options))
        transaction.set_rollback(True)
    return seen


def test_the_bulk_path_moves_a_mixed_set_exactly_as_the_per_task_path(recorder, make_task, make_group, now, settings):
    mixed_tasks(make_task, make_group, recorder, now)
    per_task = tick_with(settings, PER_TASK)
    runs = sorted(recorder.calls, key=lambda run: run.task_name)
    recorder.calls.clear()
    bulk = tick_with(settings, BULK)

    assert bulk == per_task
    # A failure reruns its chunk's other actions (the first run rolled back): the same runs, each committed once.
    assert sorted(set(recorder.calls), key=lambda run: run.task_name) == runs
    assert [run.task_name for run in runs] == ["broken", "due-0", "due-1", "due-2", "due-3", "retrying"]
    states = {name: fields[0] for name, fields in bulk["tasks"].items()}
    assert states == {
        "broken": "ERROR", "due-0": "ACTIVE", "due-1": "ACTIVE", "due-2": "ACTIVE", "due-3": "ACTIVE",
        "retrying": "ACTIVE", "weekday": "ACTIVE", "never": "ERROR", "later": "ACTIVE",
    }
    assert bulk["report"] == (1, 0, {"done": 5, "failed": 2})  # "never" fails for want of business time


def test_handed_off_in_bulk_the_workers_reach_the_same_outcome(recorder, make_task, make_group, now, settings):
    mixed_tasks(make_task, make_group, recorder, now)
    per_task = tick_with(settings, PER_TASK, inline=False)  # django-q2 runs in-process in the tests
    bulk = tick_with(settings, BULK, inline=False)
    assert bulk["tasks"] == per_task["tasks"]
    assert bulk["transitions"] == per_task["transitions"]
    assert bulk["actions"] == per_task["actions"]
    assert bulk["report"] == per_task["report"] == (1, 6, {"failed": 1})


def test_a_failing_action_rolls_back_its_own_writes_only(recorder, make_task, now, settings):
    settings.SCHEDULER_TICK_BULK_MIN = BULK
    now("2026-03-02T10:00:00Z")
    for name in ("a", "broken", "c"):
        make_task(name)
    recorder.failing["broken"] = RuntimeError("summary store unreachable")
    now("2026-03-02T10:05:00Z")
    report = heartbeat.heartbeat_tick()
    assert report.outcomes == {"done": 2, "failed": 1}
    written = set(AuditEntry.objects.filter(action="test.action_ran").values_list("object_id", flat=True))
    ids = dict(SchedulerTask.objects.values_list("name", "id"))
    assert written == {str(ids["a"]), str(ids["c"])}
    broken = SchedulerTask.objects.get(name="broken")
    assert (broken.state, broken.last_error) == (TaskState.ERROR, "RuntimeError: summary store unreachable")
    assert AlertEpisode.objects.filter(kind="TASK_ERROR", subject="task:broken", state="OPEN").exists()


def test_a_task_disabled_between_claim_and_run_is_lost_and_stays_disabled(recorder, make_task, now, settings, operator, monkeypatch):
    settings.SCHEDULER_TICK_BULK_MIN = BULK
    handed = []
    monkeypatch.setattr(heartbeat, "scheduler_tasks_hand_off", lambda claims: handed.extend(claims))
    now("2026-03-02T10:00:00Z")
    kept, disabled = make_task("kept"), make_task("disabled")
    now("2026-03-02T10:05:00Z")
    heartbeat.heartbeat_tick(inline=False)
    assert {task_id for task_id, _ in handed} == {kept.id, disabled.id}
    scheduler_task_disable(actor=operator, task=disabled)

    assert scheduler_tasks_run_claimed(claims=handed) == {"done": 1, "lost": 1}
    assert [run.task_name for run in recorder.calls] == ["kept"]
    disabled.refresh_from_db()
    assert disabled.state == TaskState.DISABLED
    assert scheduler_tasks_run_claimed(claims=handed) == {"lost": 2}  # delivered twice: nothing runs twice



def test_a_broker_away_leaves_the_claims_to_lapse_and_the_tick_goes_on(recorder, make_task, now, settings, monkeypatch):
    settings.SCHEDULER_TICK_BULK_MIN = BULK

    def broker_away(claims):
        raise ConnectionError("redis: connection refused")

    monkeypatch.setattr(heartbeat, "scheduler_tasks_hand_off", broker_away)
    now("2026-03-02T10:00:00Z")
    for name in ("a", "b"):
        make_task(name)
    now("2026-03-02T10:05:00Z")
    report = heartbeat.heartbeat_tick(inline=False)
    assert report.outcomes == {"broken": 2} and report.handed_off == 0
    assert set(SchedulerTask.objects.values_list("state", flat=True)) == {TaskState.PROCESSING}  # until the claims expire


def test_a_tick_moving_many_tasks_into_error_reads_the_alert_rules_once(recorder, make_task, now, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.alerts.config import alert_rule_create, notification_channel_create

    settings.SCHEDULER_TICK_BULK_MIN = BULK
    mail = notification_channel_create(actor="test", name="ops-mail", kind="email", target="ops@example.com")
    for name in ("ops", "night"):
        alert_rule_create(actor="test", name=name, channels=[mail])
    now("2026-03-02T10:00:00Z")
    for n in range(6):
        make_task(f"ledger-{n}", interval_seconds=600)
        recorder.failing[f"ledger-{n}"] = RuntimeError("ledger unreachable")
    now("2026-03-02T10:11:00Z")
    with CaptureQueriesContext(connection) as queries:
        heartbeat.heartbeat_tick()
    assert AlertEpisode.objects.filter(kind="TASK_ERROR").count() == 6
    rule_reads = [q for q in queries.captured_queries if 'FROM "alerts_alertrule"' in q["sql"]]
    assert len(rule_reads) == 1, rule_reads
