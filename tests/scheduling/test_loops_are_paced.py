"""DOMAIN §5: a job that comes back to a step it already ran (through next or errornext) waits that step's delay."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobAttempt, JobStatus
from tests.scheduling.conftest import history

pytestmark = pytest.mark.django_db

S = JobStatus
NOW = "2026-03-02T10:00:00Z"


@pytest.fixture(autouse=True)
def _short_worker_budget(settings):
    """A worker that kept a self-loop to itself would hold it for its whole budget: keep that short."""
    settings.JOB_WORKER_BUDGET_SECONDS = 1


def dispatch_until_idle() -> int:
    """Dispatcher turns at the frozen instant until nothing more starts; how many turns started something."""
    turns = 0
    while jobs_dispatch():
        turns += 1
        assert turns < 20, "the dispatcher never ran out of due jobs at one instant"
    return turns


def test_a_step_whose_next_is_itself_runs_again_only_after_its_delay(load_spool, waiting_job, now):
    start = now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=1\ndelay=5m\n"), 1)

    dispatch_until_idle()
    job.refresh_from_db()
    assert history(job) == [(1, 1, 0)]
    assert (job.status, job.state, job.attempt, job.timestamp) == (S.WAITING, 1, 1, start + dt.timedelta(minutes=5))

    now("2026-03-02T10:05:00Z")
    dispatch_until_idle()
    assert history(job) == [(1, 1, 0), (1, 1, 0)]


def test_a_loop_through_errornext_waits_the_delay_of_the_step_it_comes_back_to(load_spool, waiting_job, now):
    start = now(NOW)
    spool = load_spool("[1]\ncommand=false\nerrornext=2\ndelay=10m\n[2]\ncommand=true\nnext=1\ndelay=1m\n")
    job = waiting_job(spool, 1)

    dispatch_until_idle()
    job.refresh_from_db()
    # 1 fails, 2 never ran: at once; 2 leads back to 1, which already ran: after step 1's delay
    assert history(job) == [(1, 1, 1), (2, 1, 0)]
    assert (job.state, job.status, job.timestamp) == (1, S.WAITING, start + dt.timedelta(minutes=10))


def test_a_loop_with_no_delay_still_waits_a_second(load_spool, waiting_job, now):
    start = now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=1\ndelay=0s\n"), 1)

    dispatch_until_idle()
    job.refresh_from_db()
    assert len(history(job)) == 1 and job.timestamp == start + dt.timedelta(seconds=1)


def test_a_chain_that_does_not_come_back_still_runs_at_once(load_spool, waiting_job, now):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=2\ndelay=1h\n[2]\ncommand=true\nnext=3\ndelay=1h\n[3]\ncommand=true\n"), 1)

    dispatch_until_idle()
    job.refresh_from_db()
    assert history(job) == [(1, 1, 0), (2, 1, 0), (3, 1, 0)] and job.status == S.OK


def test_three_looping_jobs_do_not_starve_twenty_others(load_spool, waiting_job, now):
    now(NOW)
    loops = [waiting_job(load_spool("[1]\ncommand=true\nnext=1\ndelay=0\n", name="looper"), 1) for _ in range(3)]
    others = [waiting_job(load_spool("[1]\ncommand=true\n", name="work"), 1) for _ in range(20)]

    dispatch_until_idle()

    assert Job.objects.filter(id__in=[job.id for job in others], status=S.OK).count() == 20
    assert [JobAttempt.objects.filter(job=job).count() for job in loops] == [1, 1, 1]

    now("2026-03-02T10:00:01Z")  # the floor has passed: each loop runs once more, and only once
    dispatch_until_idle()
    assert [JobAttempt.objects.filter(job=job).count() for job in loops] == [2, 2, 2]
    assert JobAttempt.objects.count() == 26
