"""Fixtures of the scheduler's tests: a recording action, tasks and calendar groups."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable

import pytest

from portal import clock
from scheduling.scheduler.calendars import calendar_group_create
from scheduling.scheduler.heartbeat import heartbeat_tick
from scheduling.scheduler.models import CalendarGroup, SchedulerTask, Subtype
from scheduling.scheduler.services import scheduler_task_create
from scheduling.workflows import dispatcher, worker
from scheduling.workflows.ini import Problem
from scheduling.workflows.models import Job, JobAttempt, Spool
from scheduling.workflows.services import job_add, job_start, workflow_load
from scheduling.workflows.workflow import WorkflowError, parse_workflow
from tests.scheduling.actions import RECORDER, Recorder

RECORD = "tests.scheduling.actions.record"


@pytest.fixture
def recorder(settings) -> Recorder:
    """The recording action registered for every subtype."""
    settings.SCHEDULER_ACTIONS = {subtype: RECORD for subtype in Subtype.values}
    settings.SCHEDULER_RETRY_BASE_SECONDS = 60
    settings.SCHEDULER_RETRY_MAX_SECONDS = 3600
    RECORDER.reset()
    yield RECORDER
    RECORDER.reset()


@pytest.fixture
def make_task(db) -> Callable[..., SchedulerTask]:
    def make(name: str = "summary", *, interval_seconds: int = 300, subtype: str = Subtype.BATCH_MONITOR, **options) -> SchedulerTask:
        return scheduler_task_create(actor="test", name=name, subtype=subtype, interval_seconds=interval_seconds, **options)

    return make


@pytest.fixture
def make_group(db) -> Callable[..., CalendarGroup]:
    def make(name: str = "TARGET2", *, timezone: str = "Europe/Berlin", weekend_days=(6, 7), holidays=(), hours=()) -> CalendarGroup:
        return calendar_group_create(
            actor="test",
            name=name,
            timezone=timezone,
            weekend_days=list(weekend_days),
            entries=[{"date": dt.date.fromisoformat(d), "description": "holiday"} for d in holidays],
            schedule_entries=[
                {"type_code": "DAY", "open_time": dt.time.fromisoformat(o), "close_time": dt.time.fromisoformat(c)} for o, c in hours
            ],
        )

    return make


@pytest.fixture
def tick(now) -> Callable[[str], object]:
    """One in-process E_Heartbeat at the given instant."""

    def run(at: str | None = None, **options):
        if at is not None:
            now(at)
        return heartbeat_tick(**options)

    return run


def utc(text: str) -> dt.datetime:
    return clock.parse_instant(text)


# --- workflow jobs --------------------------------------------------------------------

TEST_ACTOR = "cli:test"


@pytest.fixture
def write_workflow(tmp_path) -> Callable[..., str]:
    """Write an INI workflow file and return its path."""

    def write(text: str, name: str = "workflow.ini") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return str(path)

    return write


@pytest.fixture
def load_spool(db, write_workflow) -> Callable[..., Spool]:
    """Load a workflow text for a spool (created if new)."""

    def load(text: str, name: str = "billing") -> Spool:
        path = write_workflow(text, f"{name}.ini")
        return workflow_load(spool_name=name, path=path, actor=TEST_ACTOR).spool

    return load


@pytest.fixture
def waiting_job() -> Callable[..., Job]:
    """A new generation's job at ``state``, Waiting and due now (an `add` then a `start`)."""

    def make(spool: Spool, state: int) -> Job:
        job = job_add(spool=spool, state=state, actor=TEST_ACTOR)
        return job_start(job=job, actor=TEST_ACTOR, named=False)

    return make


class HeldClaims:
    """Stands in for the broker: claims are kept instead of run, so a test can act between claim and run."""

    def __init__(self) -> None:
        self.claims: list[tuple[int, str]] = []

    def enqueue(self, job: Job, token, step) -> None:
        self.claims.append((job.id, str(token)))

    def run_all(self) -> list[str]:
        """Run the claims held so far (claims made meanwhile stay held)."""
        claims, self.claims = self.claims, []
        return [worker.job_run(job_id=job_id, token=token) for job_id, token in claims]


@pytest.fixture
def held(monkeypatch) -> HeldClaims:
    holder = HeldClaims()
    monkeypatch.setattr(dispatcher, "_job_enqueue", holder.enqueue)
    return holder


def history(job: Job) -> list[tuple[int, int, int | None]]:
    """(state, attempt, return code) of each attempt, oldest first."""
    return list(JobAttempt.objects.filter(job=job).order_by("id").values_list("state", "attempt", "return_code"))


def refused(text: str, source: str = "") -> tuple[Problem, WorkflowError]:
    """The one problem a workflow text is refused for, and the refusal."""
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, source=source)
    [problem] = caught.value.problems
    return problem, caught.value


@pytest.fixture(autouse=True)
def _journal_of_this_test(settings, tmp_path):
    """Each test's worker keeps its step outcome journal apart (PORTAL_DATA_DIR is shared by the runs)."""
    settings.STEP_JOURNAL_FILE = tmp_path / "step-outcomes.jsonl"
    return settings.STEP_JOURNAL_FILE
