"""Running jobs whose worker is gone become Zombie: at dispatcher start-up and on every sweep."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess

import pytest
from django.core.management import call_command

from scheduling.scheduler.heartbeat import heartbeat_tick
from scheduling.scheduler.models import TaskEvent
from scheduling.workflows import dispatcher, worker
from scheduling.workflows.command import run_command
from scheduling.workflows.dispatcher import jobs_dispatch, jobs_mark_zombies
from scheduling.workflows.models import Job, JobAttempt, JobStatus
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
    """A job picked up by a worker: Running, its lease running until ``lease_until``, on ``worker``."""
    now(NOW.isoformat())
    spool = load_spool("[1]\ncommand=true\n")

    def make(*, worker: str, lease_until: dt.datetime) -> Job:
        job = waiting_job(spool, 1)
        Job.objects.filter(id=job.id).update(status=S.RUNNING, started_at=NOW, worker=worker, lease_until=lease_until, claim_token=None)
        return job

    return make


def status(job: Job) -> str:
    job.refresh_from_db()
    return job.status


def test_a_lapsed_lease_makes_a_running_job_zombie(picked, now):
    job = picked(worker="other-host:4242", lease_until=NOW + dt.timedelta(seconds=30))
    assert jobs_mark_zombies() == 0
    now((NOW + dt.timedelta(seconds=31)).isoformat())
    assert jobs_mark_zombies() == 1
    assert status(job) == S.ZOMBIE


def test_a_live_worker_keeps_its_job_running(picked):
    mine = picked(worker=f"{socket.gethostname()}:{os.getpid()}", lease_until=NOW + dt.timedelta(seconds=30))
    elsewhere = picked(worker="other-host:1", lease_until=NOW + dt.timedelta(seconds=30))
    assert jobs_mark_zombies() == 0
    assert status(mine) == status(elsewhere) == S.RUNNING


def test_dispatcher_start_up_finds_jobs_whose_worker_process_is_gone_at_once(picked):
    orphan = picked(worker=f"{socket.gethostname()}:{dead_pid()}", lease_until=NOW + dt.timedelta(seconds=30))
    call_command("run_dispatcher", "--once", "--now", NOW.isoformat())
    assert status(orphan) == S.ZOMBIE


def test_a_claim_no_worker_picks_up_becomes_zombie_after_the_grace(load_spool, waiting_job, now, held, settings):
    now(NOW.isoformat())
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    jobs_dispatch()
    assert status(job) == S.RUNNING
    now((NOW + dt.timedelta(seconds=settings.JOB_QUEUE_GRACE_SECONDS + 1)).isoformat())
    jobs_mark_zombies()
    assert status(job) == S.ZOMBIE
    attempt = JobAttempt.objects.get(job=job)
    assert attempt.status_after == S.ZOMBIE and attempt.outcome.startswith("Zombie: no live worker")

    # the lost task turning up late runs nothing: the claim is gone
    assert "the claim is gone" in held.run_all()[0]
    assert status(job) == S.ZOMBIE and attempt.return_code is None


def test_a_zombie_is_reset_and_runs_again(picked):
    job = picked(worker=f"{socket.gethostname()}:{dead_pid()}", lease_until=NOW + dt.timedelta(seconds=30))
    jobs_mark_zombies()
    job_reset(job=job, actor=TEST_ACTOR)
    assert jobs_dispatch() == 1
    job.refresh_from_db()
    assert (job.status, job.attempt, job.return_code) == (S.OK, 1, 0)


def test_a_worker_whose_job_was_taken_stops_its_command():
    """When the lease can no longer be renewed, the command is stopped rather than left to race a new attempt."""
    result = run_command(
        ["sleep", "30"], cwd="/", env={"PATH": os.environ["PATH"]}, time_limit=60, tail_chars=500,
        still_ours=lambda: False, check_every=0.1,
    )
    assert result.abandoned and result.return_code < 0
    assert "the job was taken from this worker" in result.output_tail


def test_the_lease_renews_only_while_the_job_is_still_this_workers(load_spool, waiting_job, now, held):
    now(NOW.isoformat())
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    now((NOW + dt.timedelta(seconds=5)).isoformat())
    assert worker._lease_renew(job_id, token) is True
    job.refresh_from_db()
    assert job.lease_until == NOW + dt.timedelta(seconds=5 + 30)

    assert dispatcher.jobs_mark_zombies() == 0  # the lease is fresh
    Job.objects.filter(id=job.id).update(lease_until=NOW)
    now((NOW + dt.timedelta(seconds=10)).isoformat())
    dispatcher.jobs_mark_zombies()
    assert worker._lease_renew(job_id, token) is False


def test_heartbeat_start_finds_jobs_whose_worker_process_is_gone(picked):
    orphan = picked(worker=f"{socket.gethostname()}:{dead_pid()}", lease_until=NOW + dt.timedelta(seconds=30))
    report = heartbeat_tick(event=TaskEvent.HEARTBEAT_START)
    assert status(orphan) == S.ZOMBIE
    assert report.zombies == 1
