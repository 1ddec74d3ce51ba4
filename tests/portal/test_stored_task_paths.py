"""django-q2 keeps a task's dotted path in its queue and in Schedule rows: paths written by earlier versions still run."""

from __future__ import annotations

import pydoc

import pytest

from scheduling.scheduler.tasks import heartbeat, run_claimed_task
from scheduling.workflows.tasks import finalize_generations, run_job

# What the version before the engine split wrote into queued tasks and schedules.
PATHS_WRITTEN_BEFORE = {
    "scheduling.job_tasks.run_job": run_job,
    "scheduling.job_tasks.finalize_generations": finalize_generations,
    "scheduling.tasks.heartbeat": heartbeat,
    "scheduling.tasks.run_claimed_task": run_claimed_task,
}


@pytest.mark.parametrize("path", sorted(PATHS_WRITTEN_BEFORE))
def test_a_path_queued_before_the_split_reaches_the_same_task(path):
    # django-q2's worker resolves a task's func with pydoc.locate.
    assert pydoc.locate(path) is PATHS_WRITTEN_BEFORE[path]


def test_every_path_the_portal_writes_now_resolves(settings):
    from scheduling.scheduler.due import RUN_CLAIMED_TASKS
    from scheduling.scheduler.services import RUN_CLAIMED_TASK
    from scheduling.workflows.dispatcher import RUN_TASK

    written = [RUN_TASK, RUN_CLAIMED_TASK, RUN_CLAIMED_TASKS, *(func for func, _ in settings.PORTAL_SCHEDULES.values())]
    assert all(callable(pydoc.locate(path)) for path in written), written
