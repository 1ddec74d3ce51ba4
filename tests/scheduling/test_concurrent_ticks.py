"""Two ticks at the same moment (two clusters) never run one task's action twice for an interval."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from portal import clock
from portal.models import AuditEntry
from scheduling.scheduler import heartbeat
from scheduling.scheduler.models import SchedulerTask, TaskState
from tests.scheduling.conftest import utc

TASKS = 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("bulk_min", [1000, 1], ids=["one task at a time", "in bulk"])
def test_two_concurrent_ticks_run_each_action_once(recorder, make_task, monkeypatch, settings, bulk_min):
    settings.SCHEDULER_TICK_BULK_MIN = bulk_min
    clock.set_now(utc("2026-03-02T10:00:00Z"))
    tasks = [make_task(f"task-{n:02d}", interval_seconds=300) for n in range(TASKS)]
    clock.set_now(utc("2026-03-02T10:05:00Z"))

    # Both ticks read the same due tasks before either claims any: the worst interleaving.
    both_read = threading.Barrier(2, timeout=30)
    read_due = heartbeat.tasks_due

    def due_then_wait(now):
        found = read_due(now)
        both_read.wait()
        return found

    monkeypatch.setattr(heartbeat, "tasks_due", due_then_wait)
    reports, errors = [], []

    def tick() -> None:
        try:
            reports.append(heartbeat.heartbeat_tick())
        except Exception as exc:  # noqa: BLE001  - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(run.task_name for run in recorder.calls) == [t.name for t in tasks]
    assert AuditEntry.objects.filter(action="test.action_ran").count() == TASKS
    assert sum(r.outcomes.get("done", 0) for r in reports) == TASKS
    assert sum(r.outcomes.get("taken", 0) for r in reports) == TASKS  # the other tick lost every race
    assert set(SchedulerTask.objects.values_list("state", flat=True)) == {TaskState.ACTIVE}
    assert all(t.transitions.filter(event="E_ActionDone").count() == 1 for t in tasks)
