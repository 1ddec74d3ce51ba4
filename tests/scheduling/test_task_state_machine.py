"""The scheduler task state machine of DOMAIN §2, driven by in-process heartbeat ticks."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.models import AuditEntry
from scheduling.scheduler.models import SchedulerTask, Subtype, TaskState
from scheduling.scheduler.services import (
    TransitionRefused,
    scheduler_task_disable,
    scheduler_task_enable,
    scheduler_task_resume,
    scheduler_task_run_claimed,
    scheduler_task_run_now,
    scheduler_task_suspend,
    scheduler_task_update,
)
from tests.scheduling.conftest import utc

pytestmark = pytest.mark.django_db

MINUTE = dt.timedelta(minutes=1)


def moves(task: SchedulerTask) -> list[tuple[str, str, str]]:
    return [(t.from_state, t.to_state, t.event) for t in task.transitions.order_by("id")]


def committed_action_rows(task: SchedulerTask) -> int:
    return AuditEntry.objects.filter(action="test.action_ran", object_id=str(task.id)).count()


def test_creating_an_enabled_task_is_an_enable_from_inactive(make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    assert task.state == TaskState.ACTIVE
    assert task.last_interval_end_at == utc("2026-03-02T10:00:00Z")
    assert task.next_timeout_at == utc("2026-03-02T10:05:00Z")
    assert moves(task) == [("INACTIVE", "ACTIVE", "E_Enable")]
    assert make_task("off", enabled=False).state == TaskState.INACTIVE


def test_a_due_tick_runs_the_action_over_the_interval_and_returns_to_active(recorder, make_task, tick, now):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300, subtype=Subtype.HOSTED_SERVICE_MONITOR, interfaces=[])
    tick("2026-03-02T10:04:59Z")
    assert recorder.calls == []

    tick("2026-03-02T10:05:00Z")
    task.refresh_from_db()
    [run] = recorder.calls
    assert (run.interval_start, run.interval_end) == (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T10:05:00Z"))
    assert run.subtype == "HOSTED_SERVICE_MONITOR" and run.task_name == "summary"
    assert task.state == TaskState.ACTIVE
    assert task.last_interval_end_at == task.last_fired_at == utc("2026-03-02T10:05:00Z")
    assert task.next_timeout_at == utc("2026-03-02T10:10:00Z")
    assert moves(task)[1:] == [("ACTIVE", "PROCESSING", "E_Heartbeat"), ("PROCESSING", "ACTIVE", "E_ActionDone")]
    assert committed_action_rows(task) == 1


def test_the_action_receives_the_tasks_interface_codes(recorder, make_task, tick, now):
    from monitoring.summaries.models import MonitoredInterface

    now("2026-03-02T10:00:00Z")
    hosted = MonitoredInterface.objects.filter(direction="HOSTED")
    make_task(subtype=Subtype.HOSTED_SERVICE_MONITOR, interfaces=list(hosted))
    tick("2026-03-02T10:05:00Z")
    assert recorder.calls[0].interface_codes == ("BATCH_PAYMENT_ORIGINATOR", "PAYMENT_ORIGINATOR")


def test_after_downtime_one_tick_performs_one_action_over_the_whole_gap(recorder, make_task, tick, now):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    tick("2026-03-02T13:02:00Z")  # 36 intervals later
    tick("2026-03-02T13:02:00Z")
    tick("2026-03-02T13:03:00Z")
    [run] = recorder.calls
    assert (run.interval_start, run.interval_end) == (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T13:02:00Z"))
    task.refresh_from_db()
    assert task.next_timeout_at == utc("2026-03-02T13:07:00Z")


def test_a_weekend_tick_emits_nothing_and_moves_the_timeout_to_the_next_opening(recorder, make_group, make_task, tick, now):
    now("2026-03-06T16:00:00Z")  # Friday 17:00 in Berlin
    group = make_group(hours=[("07:00", "18:00")])
    task = make_task(interval_seconds=3600, calendar_groups=[group])
    tick("2026-03-06T17:00:00Z")  # 18:00: closed
    task.refresh_from_db()
    assert recorder.calls == []
    assert task.state == TaskState.ACTIVE
    assert task.next_timeout_at == utc("2026-03-09T06:00:00Z")  # Monday 07:00 CET
    assert moves(task)[-1] == ("ACTIVE", "ACTIVE", "E_Heartbeat")
    assert "outside business time" in task.transitions.last().note

    tick("2026-03-07T12:00:00Z")
    assert recorder.calls == []
    tick("2026-03-09T06:00:00Z")
    [run] = recorder.calls
    assert (run.interval_start, run.interval_end) == (utc("2026-03-06T16:00:00Z"), utc("2026-03-09T06:00:00Z"))


def test_a_holiday_is_skipped(recorder, make_group, make_task, tick, now):
    now("2026-04-30T12:00:00Z")
    group = make_group(holidays=["2026-05-01"])  # a Friday
    task = make_task(interval_seconds=3600, calendar_groups=[group])
    tick("2026-04-30T22:00:00Z")  # 00:00 CEST on the holiday
    task.refresh_from_db()
    assert recorder.calls == []
    assert task.next_timeout_at == utc("2026-05-03T22:00:00Z")  # Monday 00:00 CEST


def test_a_failing_action_is_kept_as_error_rolled_back_and_never_stops_the_others(recorder, make_task, tick, now):
    now("2026-03-02T10:00:00Z")
    broken = make_task("broken")
    fine = make_task("fine")
    recorder.failing["broken"] = RuntimeError("summary store unreachable")
    tick("2026-03-02T10:05:00Z")
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert broken.state == TaskState.ERROR
    assert broken.last_error == "RuntimeError: summary store unreachable"
    assert broken.consecutive_failures == 1
    assert broken.next_timeout_at == utc("2026-03-02T10:06:00Z")  # the first backoff: 60 s
    assert committed_action_rows(broken) == 0  # the action's writes rolled back with it
    assert moves(broken)[-1] == ("PROCESSING", "ERROR", "E_ActionFailed")
    assert fine.state == TaskState.ACTIVE and committed_action_rows(fine) == 1


def test_error_is_retried_with_a_growing_backoff_then_recovers(recorder, make_task, tick, now):
    now("2026-03-02T10:00:00Z")
    task = make_task("flaky")
    recorder.failing["flaky"] = RuntimeError("down")
    tick("2026-03-02T10:05:00Z")
    tick("2026-03-02T10:05:59Z")  # before the retry time: nothing
    assert len(recorder.calls) == 1
    tick("2026-03-02T10:06:00Z")
    task.refresh_from_db()
    assert task.consecutive_failures == 2 and task.next_timeout_at == utc("2026-03-02T10:08:00Z")

    del recorder.failing["flaky"]
    tick("2026-03-02T10:08:00Z")
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE
    assert (task.consecutive_failures, task.last_error) == (0, "")
    last = recorder.calls[-1]
    assert (last.interval_start, last.interval_end) == (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T10:08:00Z"))
    assert task.next_timeout_at == utc("2026-03-02T10:13:00Z")


def test_the_backoff_is_capped(settings):
    settings.SCHEDULER_RETRY_BASE_SECONDS = 60
    settings.SCHEDULER_RETRY_MAX_SECONDS = 600
    assert [SchedulerTask.retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5, 9)] == [60, 120, 240, 480, 600, 600]


def test_a_subtype_without_a_registered_action_is_an_error_not_a_silent_no_op(recorder, settings, make_task, tick, now):
    settings.SCHEDULER_ACTIONS = {}
    now("2026-03-02T10:00:00Z")
    task = make_task(subtype=Subtype.INVOKED_SERVICE_MONITOR)
    tick("2026-03-02T10:05:00Z")
    task.refresh_from_db()
    assert task.state == TaskState.ERROR
    assert task.last_error == "no action is registered for subtype INVOKED_SERVICE_MONITOR (settings.SCHEDULER_ACTIONS)"


def test_suspend_with_a_resume_time_resumes_by_itself_and_covers_the_suspension(recorder, make_task, tick, now, operator):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    now("2026-03-02T10:02:00Z")
    scheduler_task_suspend(actor=operator, task=task, reason="upstream maintenance", resume_at=utc("2026-03-02T12:00:00Z"))
    task.refresh_from_db()
    assert (task.state, task.suspended_reason, task.suspended_by) == (TaskState.SUSPENDED, "upstream maintenance", operator)

    for at in ("2026-03-02T10:05:00Z", "2026-03-02T11:00:00Z", "2026-03-02T11:59:59Z"):
        tick(at)
    assert recorder.calls == []

    tick("2026-03-02T12:00:00Z")
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE and task.resume_at is None and task.suspended_reason == ""
    [run] = recorder.calls
    assert (run.interval_start, run.interval_end) == (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T12:00:00Z"))
    assert [m[2] for m in moves(task)] == ["E_Enable", "E_Suspend", "E_Resume", "E_Heartbeat", "E_ActionDone"]
    resumed = task.transitions.get(event="E_Resume")
    assert resumed.actor is None and "resume time" in resumed.note
    audit = AuditEntry.objects.get(action="scheduler_task.suspend")
    assert (audit.actor, audit.reason, audit.after["state"]) == (operator, "upstream maintenance", "SUSPENDED")


def test_a_suspension_without_resume_time_waits_for_an_operator(recorder, make_task, tick, now, operator):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    scheduler_task_suspend(actor=operator, task=task, reason="hold")
    tick("2026-03-03T10:00:00Z")
    assert recorder.calls == []
    scheduler_task_resume(actor=operator, task=task)
    tick("2026-03-03T10:00:30Z")
    [run] = recorder.calls
    assert run.interval_start == utc("2026-03-02T10:00:00Z")


def test_suspend_needs_a_reason_and_a_future_resume_time(make_task, now, operator):
    from django.core.exceptions import ValidationError

    now("2026-03-02T10:00:00Z")
    task = make_task()
    with pytest.raises(ValidationError, match="reason"):
        scheduler_task_suspend(actor=operator, task=task, reason="  ")
    with pytest.raises(ValidationError, match="must be later than now"):
        scheduler_task_suspend(actor=operator, task=task, reason="x", resume_at=utc("2026-03-02T09:00:00Z"))
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE


def test_disable_then_enable_starts_afresh(recorder, make_task, tick, now, operator):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    now("2026-03-02T10:01:00Z")
    scheduler_task_disable(actor=operator, task=task, reason="retired interface")
    tick("2026-03-02T11:00:00Z")
    assert recorder.calls == []
    task.refresh_from_db()
    assert (task.state, task.enabled, task.next_timeout_at) == (TaskState.DISABLED, False, None)

    scheduler_task_enable(actor=operator, task=task)
    task.refresh_from_db()
    assert task.last_interval_end_at == utc("2026-03-02T11:00:00Z")
    assert task.next_timeout_at == utc("2026-03-02T11:05:00Z")
    tick("2026-03-02T11:05:00Z")
    assert recorder.calls[0].interval_start == utc("2026-03-02T11:00:00Z")


def test_a_command_from_the_wrong_state_is_refused_with_the_current_state(make_task, now, operator):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    with pytest.raises(TransitionRefused, match="cannot resume task summary: it is ACTIVE") as refused:
        scheduler_task_resume(actor=operator, task=task)
    assert refused.value.state == TaskState.ACTIVE
    with pytest.raises(TransitionRefused):
        scheduler_task_enable(actor=operator, task=task)
    assert not AuditEntry.objects.filter(action__in=["scheduler_task.resume", "scheduler_task.enable"]).exists()


def test_a_viewer_may_not_command_a_task(make_task, now, viewer):
    from django.core.exceptions import PermissionDenied

    now("2026-03-02T10:00:00Z")
    task = make_task()
    with pytest.raises(PermissionDenied):
        scheduler_task_disable(actor=viewer, task=task)


def test_run_now_runs_at_once_whatever_the_calendar(recorder, make_group, make_task, now, operator):
    now("2026-03-07T10:00:00Z")  # a Saturday
    task = make_task(interval_seconds=3600, calendar_groups=[make_group()])
    now("2026-03-07T10:20:00Z")
    task = scheduler_task_run_now(actor=operator, task=task, reason="check", inline=True)
    assert task.state == TaskState.ACTIVE
    [run] = recorder.calls
    assert (run.interval_start, run.interval_end) == (utc("2026-03-07T10:00:00Z"), utc("2026-03-07T10:20:00Z"))
    assert task.next_timeout_at == utc("2026-03-07T11:20:00Z")
    assert moves(task)[1] == ("ACTIVE", "PROCESSING", "E_RunNow")
    assert task.transitions.get(event="E_RunNow").actor == operator


def test_heartbeat_start_starts_enabled_tasks_left_inactive(recorder, tick, now):
    now("2026-03-02T10:00:00Z")
    task = SchedulerTask.objects.create(name="loaded", subtype=Subtype.BATCH_MONITOR, interval_seconds=60, enabled=True)
    tick("2026-03-02T10:00:10Z")
    task.refresh_from_db()
    assert task.state == TaskState.INACTIVE

    tick("2026-03-02T10:00:20Z", event="E_HeartbeatStart")
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE and task.next_timeout_at == utc("2026-03-02T10:01:20Z")
    assert moves(task) == [("INACTIVE", "ACTIVE", "E_HeartbeatStart")]


def test_a_claim_whose_worker_was_lost_expires_into_error_and_is_retried_at_once(recorder, make_task, tick, now, settings, monkeypatch):
    """DOMAIN §5: a scheduler task claimed by a worker that vanished is retried within SCHEDULER_CLAIM_SECONDS."""
    settings.SCHEDULER_CLAIM_SECONDS = 660
    handed = []
    monkeypatch.setattr("scheduling.scheduler.heartbeat.scheduler_task_hand_off", lambda **claim: handed.append(claim))
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    tick("2026-03-02T10:05:00Z", inline=False)  # handed to a worker that dies
    task.refresh_from_db()
    assert task.state == TaskState.PROCESSING and len(handed) == 1

    tick("2026-03-02T10:15:00Z", event="E_HeartbeatStart", inline=False)  # within the claim: left alone
    task.refresh_from_db()
    assert task.state == TaskState.PROCESSING

    tick("2026-03-02T10:16:01Z", inline=False)  # the claim expired: ERROR, and due again in the same tick
    task.refresh_from_db()
    assert task.state == TaskState.PROCESSING and len(handed) == 2
    assert moves(task)[-2:] == [("PROCESSING", "ERROR", "E_Heartbeat"), ("ERROR", "PROCESSING", "E_Heartbeat")]
    assert "worker was lost" in task.last_error

    # The dead worker's task, delivered late, finds its claim gone and does nothing; the new claim runs.
    assert scheduler_task_run_claimed(**handed[0]) == "lost"
    assert scheduler_task_run_claimed(**handed[1]) == "done"
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE
    [run] = recorder.calls
    assert (run.interval_start, run.interval_end) == (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T10:16:01Z"))


def test_disabling_a_processing_task_discards_its_running_action(recorder, make_task, tick, now, operator, monkeypatch):
    handed = []
    monkeypatch.setattr("scheduling.scheduler.heartbeat.scheduler_task_hand_off", lambda **claim: handed.append(claim))
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    tick("2026-03-02T10:05:00Z", inline=False)
    scheduler_task_disable(actor=operator, task=task)
    assert scheduler_task_run_claimed(**handed[0]) == "lost"
    task.refresh_from_db()
    assert task.state == TaskState.DISABLED and recorder.calls == []


def test_a_new_interval_counts_from_the_last_interval_end(make_task, now, administrator):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=3600)
    task = scheduler_task_update(actor=administrator, task=task, interval_seconds=60)
    assert task.next_timeout_at == utc("2026-03-02T10:01:00Z")
    audit = AuditEntry.objects.get(action="scheduler_task.update")
    assert (audit.before["interval_seconds"], audit.after["interval_seconds"]) == (3600, 60)


def test_turning_enabled_off_and_on_in_the_configuration_is_a_disable_and_an_enable(make_task, now, administrator):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    scheduler_task_update(actor=administrator, task=task, enabled=False)
    scheduler_task_update(actor=administrator, task=task, enabled=True)
    task.refresh_from_db()
    assert moves(task)[1:] == [("ACTIVE", "DISABLED", "E_Disable"), ("DISABLED", "ACTIVE", "E_Enable")]
