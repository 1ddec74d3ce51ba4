"""Fixtures of the workflow job tests: workflow files, spools, jobs, and a dispatcher that holds its claims."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from scheduling import job_services
from scheduling.job_models import Job, JobAttempt, Spool
from scheduling.services import job_add, job_start, workflow_load

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
        return [job_services.job_run(job_id=job_id, token=token) for job_id, token in claims]


@pytest.fixture
def held(monkeypatch) -> HeldClaims:
    holder = HeldClaims()
    monkeypatch.setattr(job_services, "_job_enqueue", holder.enqueue)
    return holder


def history(job: Job) -> list[tuple[int, int, int | None]]:
    """(state, attempt, return code) of each attempt, oldest first."""
    return list(JobAttempt.objects.filter(job=job).order_by("id").values_list("state", "attempt", "return_code"))
