"""A scheduler action for tests: records every call, writes a row in the tick's transaction, fails on demand."""

from __future__ import annotations

import threading

from portal.lib.taskrun import TaskRun
from portal.services import audit_record


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls: list[TaskRun] = []
        self.failing: dict[str, Exception] = {}  # task name -> what its action raises

    def runs_of(self, name: str) -> list[TaskRun]:
        return [run for run in self.calls if run.task_name == name]


RECORDER = Recorder()


def record(run: TaskRun) -> None:
    # Written before a possible failure: the rollback must take it away with the task's state.
    audit_record(
        actor="test-action",
        action="test.action_ran",
        object_type="scheduling.SchedulerTask",
        object_id=str(run.task_id),
        after={"start": run.interval_start.isoformat(), "end": run.interval_end.isoformat()},
    )
    with RECORDER.lock:
        RECORDER.calls.append(run)
    error = RECORDER.failing.get(run.task_name)
    if error is not None:
        raise error
