"""finalizeAfterDays is checked hourly, by one trigger: the first heartbeat of each hour (replayable with `heartbeat --once --now`)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobStatus

pytestmark = pytest.mark.django_db

S = JobStatus
WORKFLOW = """
    [1]
    text=Cleanup
    command=true
    finalizeNext=9
    finalizeAfterDays=2
    [9]
    text=Purge
    command=true
"""


@pytest.fixture
def done(load_spool, waiting_job, now):
    """Generation 1 reached OK on 2026-03-02 10:00 UTC."""
    now("2026-03-02T10:00:00Z")
    job = waiting_job(load_spool(WORKFLOW), 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert job.status == S.OK
    return job


def test_run_dispatcher_leaves_finalize_to_the_heartbeat_then_starts_the_new_job(done):
    call_command("run_dispatcher", "--once", "--now", "2026-03-04T10:00:00Z")
    assert not Job.objects.filter(origin="finalize").exists()

    call_command("heartbeat", "--once", "--now", "2026-03-04T10:00:00Z")
    call_command("run_dispatcher", "--once", "--now", "2026-03-04T10:00:01Z")
    purge = Job.objects.get(origin="finalize")
    assert (purge.generation, purge.state, purge.type, purge.status) == (done.generation, 9, "Purge", S.OK)

    call_command("heartbeat", "--once", "--now", "2026-03-09T10:00:00Z")
    call_command("run_dispatcher", "--once", "--now", "2026-03-09T10:00:01Z")
    assert Job.objects.filter(origin="finalize").count() == 1


def test_the_first_heartbeat_of_an_hour_checks_finalize(done):
    call_command("heartbeat", "--once", "--now", "2026-03-04T09:59:00Z")
    call_command("heartbeat", "--once", "--now", "2026-03-04T09:59:30Z")
    assert not Job.objects.filter(origin="finalize").exists()

    call_command("heartbeat", "--once", "--now", "2026-03-04T10:00:05Z")  # a new hour: checked
    purge = Job.objects.get(origin="finalize")
    assert (purge.generation, purge.state, purge.status) == (done.generation, 9, S.WAITING)


def test_later_heartbeats_of_the_same_hour_do_not_check_again(load_spool, waiting_job, now):
    now("2026-03-02T10:30:00Z")  # OK at 10:30: due for finalize on 2026-03-04 at 10:30
    waiting_job(load_spool(WORKFLOW), 1)
    jobs_dispatch()
    call_command("heartbeat", "--once", "--now", "2026-03-04T10:05:00Z")  # the hour's check: not due yet
    call_command("heartbeat", "--once", "--now", "2026-03-04T10:45:00Z")  # due, but the hour was checked
    assert not Job.objects.filter(origin="finalize").exists()
    call_command("heartbeat", "--once", "--now", "2026-03-04T11:00:10Z")
    assert Job.objects.filter(origin="finalize").count() == 1
