"""finalizeNext / finalizeAfterDays: once per generation, N days after it reached OK."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.tasks import finalize_generations

pytestmark = pytest.mark.django_db

S = JobStatus
WORKFLOW = """
    [1]
    text=Load
    command=true
    next=2
    [2]
    text=Cleanup
    command=true
    finalizeNext=9
    finalizeAfterDays=30
    [3]
    text=Failing
    command=false
    [9]
    text=Purge
    command=true
"""


def test_a_generation_ok_for_n_days_gets_one_finalize_job(load_spool, waiting_job, now):
    now("2026-03-02T10:00:00Z")
    spool = load_spool(WORKFLOW)
    done = waiting_job(spool, 1)
    failed = waiting_job(spool, 3)
    jobs_dispatch()
    done.refresh_from_db()
    assert done.status == S.OK and Job.objects.get(id=failed.id).status == S.ERROR

    now("2026-04-01T09:59:59Z")
    assert finalize_generations() == 0

    now("2026-04-01T10:00:00Z")
    assert finalize_generations() == 1
    purge = Job.objects.get(origin="finalize")
    assert (purge.spool_id, purge.generation, purge.state, purge.type, purge.status, purge.attempt) == (spool.id, done.generation, 9, "Purge", S.WAITING, 1)

    jobs_dispatch()
    now("2026-06-01T10:00:00Z")
    assert finalize_generations() == 0  # once per generation, however often the check runs
    assert Job.objects.filter(origin="finalize").count() == 1


def test_the_check_has_one_trigger_the_heartbeat():
    # The first heartbeat tick of each hour checks it; the schedule an earlier version declared is retired.
    assert "workflow-finalize" not in django_settings.PORTAL_SCHEDULES
    assert "workflow-finalize" in django_settings.RETIRED_SCHEDULES


@pytest.mark.django_db
def test_setup_schedules_retires_the_old_finalize_schedule():
    from django_q.models import Schedule

    Schedule.objects.create(name="workflow-finalize", func="scheduling.job_tasks.finalize_generations", schedule_type=Schedule.MINUTES, minutes=60)
    call_command("setup_schedules")
    assert not Schedule.objects.filter(name="workflow-finalize").exists()
    assert Schedule.objects.filter(name="heartbeat").exists()
