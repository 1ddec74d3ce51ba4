"""A failing task on a business calendar: its retries wait for business time, and a suspension keeps its interval."""

from __future__ import annotations

import pytest

from scheduling.scheduler.models import TaskState
from scheduling.scheduler.services import scheduler_task_resume, scheduler_task_suspend
from tests.scheduling.conftest import utc

pytestmark = pytest.mark.django_db


def test_a_retry_due_outside_business_time_waits_for_the_next_opening_then_covers_the_gap(recorder, make_group, make_task, tick, now):
    now("2026-03-06T15:00:00Z")  # Friday 16:00 in Berlin
    task = make_task("flaky", interval_seconds=3600, calendar_groups=[make_group(hours=[("07:00", "18:00")])])
    recorder.failing["flaky"] = RuntimeError("store down")
    tick("2026-03-06T16:00:00Z")
    task.refresh_from_db()
    assert task.state == TaskState.ERROR and task.next_timeout_at == utc("2026-03-06T16:01:00Z")

    del recorder.failing["flaky"]
    tick("2026-03-06T17:30:00Z")  # 18:30: closed, the retry waits for Monday 07:00
    task.refresh_from_db()
    assert (task.state, task.next_timeout_at) == (TaskState.ERROR, utc("2026-03-09T06:00:00Z"))
    assert len(recorder.calls) == 1

    tick("2026-03-09T06:00:00Z")
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE and task.last_error == ""
    run = recorder.calls[-1]
    assert (run.interval_start, run.interval_end) == (utc("2026-03-06T15:00:00Z"), utc("2026-03-09T06:00:00Z"))


def test_a_task_suspended_in_error_resumes_and_its_next_action_covers_everything_since_the_last_interval_end(
    recorder, make_task, tick, now, operator
):
    now("2026-03-02T10:00:00Z")
    task = make_task("flaky", interval_seconds=300)
    recorder.failing["flaky"] = RuntimeError("down")
    tick("2026-03-02T10:05:00Z")
    now("2026-03-02T10:05:30Z")
    scheduler_task_suspend(actor=operator, task=task, reason="investigating")
    del recorder.failing["flaky"]
    tick("2026-03-02T11:00:00Z")
    assert len(recorder.calls) == 1

    now("2026-03-02T11:30:00Z")
    scheduler_task_resume(actor=operator, task=task)
    tick("2026-03-02T11:30:10Z")
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE
    run = recorder.calls[-1]
    assert (run.interval_start, run.interval_end) == (utc("2026-03-02T10:00:00Z"), utc("2026-03-02T11:30:10Z"))
