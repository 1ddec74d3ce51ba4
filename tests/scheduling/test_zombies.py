"""Running jobs whose worker is gone become Zombie (DOMAIN §5): a lapsed lease, by the database's clock, is the only proof."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from scheduling.scheduler.heartbeat import heartbeat_tick
from scheduling.scheduler.models import TaskEvent
from scheduling.workflows import dispatcher, worker
from scheduling.workflows.command import run_command
from scheduling.workflows.dispatcher import jobs_dispatch, jobs_mark_zombies
from scheduling.workflows.models import Job, JobAttempt, JobStatus, db_now_plus
from scheduling.workflows.selectors import job_gates
from scheduling.workflows.services import job_reset
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def picked(load_spool, waiting_job, now):
    """A job a worker picked up: Running on ``worker``, its lease ending ``lease`` seconds from now (database clock)."""
    now(NOW.isoformat())
    spool = load_spool("[1]\ncommand=true\n")

    def make(*, worker: str, lease: float) -> Job:
        job = waiting_job(spool, 1)
        Job.objects.filter(id=job.id).update(status=S.RUNNING, started_at=NOW, worker=worker, lease_until=db_now_plus(lease), claim_token=None)
        return job

    return make


def lapse(job: Job, *, seen_seconds_ago: float | None = None) -> None:
    """The lease lapsed; with ``seen_seconds_ago``, a sweep saw it lapsed that long ago."""
    Job.objects.filter(id=job.id).update(
        lease_until=db_now_plus(-1), lapse_seen_at=None if seen_seconds_ago is None else db_now_plus(-seen_seconds_ago)
    )


def status(job: Job) -> str:
    job.refresh_from_db()
    return job.status


def test_a_lapsed_lease_makes_a_running_job_zombie_once_a_sweep_saw_it_lapsed_long_enough(picked, settings):
    job = picked(worker="other-host:4242", lease=30)
    assert jobs_mark_zombies() == 0
    lapse(job)
    assert jobs_mark_zombies() == 0  # first seen lapsed: a worker back from a database outage renews within seconds
    job.refresh_from_db()
    assert job.lapse_seen_at is not None and job.status == S.RUNNING
    lapse(job, seen_seconds_ago=settings.JOB_ZOMBIE_CONFIRM_SECONDS + 1)
    assert jobs_mark_zombies() == 1
    assert status(job) == S.ZOMBIE


def test_a_worker_that_renews_after_a_sighting_keeps_its_job(picked, load_spool, waiting_job, held):
    job = waiting_job(load_spool("[1]\ncommand=true\n", name="renewing"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    assert worker.job_attempt_pick(job_id, token)
    lapse(job)
    jobs_mark_zombies()  # seen lapsed (the database was away)
    assert worker._lease_renew(job_id, token) is True  # the worker is back
    job.refresh_from_db()
    assert job.lapse_seen_at is None and job.lease_until > timezone.now()
    assert jobs_mark_zombies() == 0 and status(job) == S.RUNNING


def test_host_and_pid_are_never_looked_at(picked):
    """A worker in another PID namespace may show any pid: a dead pid on this host name is no proof."""
    mine = picked(worker=f"{socket.gethostname()}:{os.getpid()}", lease=30)
    same_name = picked(worker=f"{socket.gethostname()}:{dead_pid()}", lease=30)
    elsewhere = picked(worker="other-host:1", lease=30)
    assert jobs_mark_zombies() == 0
    assert status(mine) == status(same_name) == status(elsewhere) == S.RUNNING


def test_dispatcher_start_up_finds_jobs_whose_lease_lapsed(picked, settings):
    orphan = picked(worker="gone:1", lease=30)
    lapse(orphan, seen_seconds_ago=settings.JOB_ZOMBIE_CONFIRM_SECONDS + 1)
    call_command("run_dispatcher", "--once", "--now", NOW.isoformat())
    assert status(orphan) == S.ZOMBIE


def test_a_claim_no_worker_picks_up_waits_for_a_free_worker_then_is_due_again_never_zombie(load_spool, waiting_job, now, held, settings):
    """DOMAIN §5: a lost broker task (or a crash between claim and hand-over) strands nothing."""
    now(NOW.isoformat())
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    assert jobs_dispatch() == 1
    job.refresh_from_db()
    assert job.status == S.WAITING and job_gates().waiting_for(job) == "a free worker"
    assert job.lease_until <= timezone.now() + dt.timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    [(lost_id, lost_token)] = held.claims
    held.claims.clear()
    assert jobs_dispatch() == 0  # the claim holds for JOB_LEASE_SECONDS

    Job.objects.filter(id=job.id).update(lease_until=db_now_plus(-1))  # no worker took it in time
    jobs_mark_zombies()
    assert status(job) == S.WAITING
    assert jobs_dispatch() == 1  # due again: claimed anew
    [(job_id, token)] = held.claims
    assert token != lost_token and JobAttempt.objects.filter(job=job).count() == 1

    # The lost task turning up late runs nothing of its own claim (it goes on with the claim waiting
    # for a worker, as any free worker does); the new task finds that done: the step ran once.
    assert "the claim is gone" in worker.job_run(job_id=lost_id, token=lost_token)
    assert "the claim is gone" in held.run_all()[0]
    job.refresh_from_db()
    assert (job.status, job.return_code) == (S.OK, 0)
    assert list(JobAttempt.objects.filter(job=job).values_list("return_code", flat=True)) == [0]


def test_a_running_job_is_running_only_once_a_worker_started_its_step(load_spool, waiting_job, now, held):
    now(NOW.isoformat())
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    jobs_dispatch()
    assert status(job) == S.WAITING
    [(job_id, token)] = held.claims
    assert worker.job_attempt_pick(job_id, token)
    job.refresh_from_db()
    assert (job.status, job.worker) == (S.RUNNING, worker.worker_identity())
    assert job.worker == f"{socket.gethostname()}:{os.getpid()}"
    assert not worker.job_attempt_pick(job_id, token)  # once, whoever is first


def test_a_zombie_is_reset_and_runs_again(picked, settings):
    job = picked(worker="gone:1", lease=30)
    lapse(job, seen_seconds_ago=settings.JOB_ZOMBIE_CONFIRM_SECONDS + 1)
    jobs_mark_zombies()
    job_reset(job=job, actor=TEST_ACTOR)
    assert jobs_dispatch() == 1
    job.refresh_from_db()
    assert (job.status, job.attempt, job.return_code) == (S.OK, 1, 0)


def test_a_worker_whose_job_was_taken_stops_its_command():
    """When the job was taken over, the command is stopped rather than left to race a new attempt."""
    result = run_command(
        ["sleep", "30"], cwd="/", env={"PATH": os.environ["PATH"]}, time_limit=60, tail_chars=500,
        still_ours=lambda: False, check_every=0.1, kill_grace=1,
    )
    assert result.abandoned and result.return_code < 0
    assert "the job was taken from this worker" in result.output_tail


def test_a_lease_that_cannot_be_renewed_leaves_the_step_running():
    """The database away: the renewal cannot tell, the step goes on and finishes."""
    asked = []

    def cannot_tell():
        asked.append(1)
        return None

    result = run_command(
        ["sh", "-c", "sleep 1.5; echo done"], cwd="/", env={"PATH": os.environ["PATH"]}, time_limit=60, tail_chars=500,
        still_ours=cannot_tell, check_every=0.2, kill_grace=1,
    )
    assert (result.return_code, result.output_tail, result.abandoned) == (0, "done\n", False)
    assert len(asked) >= 3


def test_a_renewal_that_fails_on_the_database_answers_none(load_spool, waiting_job, now, held, monkeypatch):
    now(NOW.isoformat())
    waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    worker.job_attempt_pick(job_id, token)

    def refused(self, **fields):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("django.db.models.query.QuerySet.update", refused)
    assert worker._lease_renew(job_id, token) is None


def test_the_lease_renews_by_the_database_clock_only_while_the_job_is_still_this_workers(load_spool, waiting_job, now, held, settings):
    now(NOW.isoformat())  # the portal's clock far from the database's: leases never read it
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    worker.job_attempt_pick(job_id, token)
    before = timezone.now()
    assert worker._lease_renew(job_id, token) is True
    job.refresh_from_db()
    assert before + dt.timedelta(seconds=settings.JOB_LEASE_SECONDS - 2) <= job.lease_until <= timezone.now() + dt.timedelta(seconds=settings.JOB_LEASE_SECONDS + 2)

    assert dispatcher.jobs_mark_zombies() == 0  # the lease is fresh
    lapse(job, seen_seconds_ago=settings.JOB_ZOMBIE_CONFIRM_SECONDS + 1)
    dispatcher.jobs_mark_zombies()
    assert worker._lease_renew(job_id, token) is False


def test_heartbeat_start_finds_jobs_whose_lease_lapsed(picked, settings):
    orphan = picked(worker="gone:1", lease=30)
    lapse(orphan, seen_seconds_ago=settings.JOB_ZOMBIE_CONFIRM_SECONDS + 1)
    report = heartbeat_tick(event=TaskEvent.HEARTBEAT_START)
    assert status(orphan) == S.ZOMBIE
    assert report.zombies == 1
