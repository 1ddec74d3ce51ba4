"""DOMAIN §5: no spool's dispatching is stopped by one bad file, even a version stored before the numbers were bounded."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from scheduling.workflows.dispatcher import generations_finalize, jobs_dispatch
from scheduling.workflows.models import Job, JobOrigin, JobStatus, Spool, WorkflowVersion
from scheduling.workflows.services import job_add
from scheduling.workflows.workflow import checksum
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus
NOW = "2026-03-02T10:00:00Z"
GOOD = "[1]\ncommand=true\nfinalizeNext=2\nfinalizeAfterDays=1\n[2]\ncommand=true\n"


def stored_before_the_bounds(spool: Spool, steps: list[dict]) -> None:
    """A version as an older portal stored it: never checked by today's loader."""
    # The checksum of what it holds: versions are cached per process by id and checksum.
    digest = checksum(json.dumps(steps))
    version = WorkflowVersion.objects.create(spool=spool, number=2, source="old.ini", text="", checksum=digest, steps=steps)
    Spool.objects.filter(id=spool.id).update(workflow=version)


@pytest.mark.parametrize(
    "steps",
    [
        [{"number": 1, "command": "run 'unclosed"}],  # its command fails when the claim fills it in
        [{"number": 1, "command": "true", "colour": "blue"}],  # not even read back as a workflow
    ],
)
def test_a_spool_whose_step_cannot_be_claimed_leaves_the_others_running(load_spool, waiting_job, now, caplog, steps):
    now(NOW)
    legacy, good = load_spool(GOOD, name="legacy"), load_spool(GOOD, name="good")
    stuck = waiting_job(legacy, 1)  # the oldest due job: tried first
    ready = [waiting_job(good, 1) for _ in range(2)]
    stored_before_the_bounds(legacy, steps)

    assert jobs_dispatch() == 2  # both of the good spool, claimed past the stuck one

    assert [Job.objects.get(id=job.id).status for job in ready] == [S.OK, S.OK]
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts.count()) == (S.WAITING, 0)
    assert "spool legacy" in caplog.text and "the other spools go on" in caplog.text


def test_a_finalize_overflow_of_one_spool_lets_the_others_finalize(load_spool, now, caplog):
    start = now(NOW)
    legacy, good = load_spool(GOOD, name="legacy"), load_spool(GOOD, name="good")
    for spool in (legacy, good):
        job = job_add(spool=spool, state=1, actor=TEST_ACTOR)
        Job.objects.filter(id=job.id).update(status=S.OK, finished_at=start - dt.timedelta(days=2))
    # finalizeAfterDays=800000 loaded once: now - 800000 days is before year 1, an OverflowError
    stored_before_the_bounds(legacy, [{"number": 1, "command": "true", "finalize_next": 2, "finalize_after_days": 800_000}, {"number": 2, "command": "true"}])

    assert generations_finalize() == 1
    assert list(Job.objects.filter(origin=JobOrigin.FINALIZE).values_list("spool__name", "state")) == [("good", 2)]
    assert "finalize: spool legacy failed" in caplog.text
