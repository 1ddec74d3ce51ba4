"""The demo spool of `make run`: loaded once, and its jobs move on their own."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings

from portal.services import demo_load
from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobStatus, Spool
from tests.scheduling.conftest import history

pytestmark = pytest.mark.django_db


def test_demo_loader_creates_the_spool_and_a_first_job_once(now):
    start = now("2026-03-02T10:00:00Z")
    assert "scheduling.workflows.demo.load_demo" in django_settings.DEMO_LOADERS
    demo_load()
    demo_load()

    spool = Spool.objects.get(name="demo")
    steps = spool.workflow.workflow.steps
    assert [(n, s.text) for n, s in steps.items()][:6] == [
        (10, "Initialize"), (11, "Prepare"), (12, "Archiving"), (13, "Protocol"), (14, "Cleanup"), (15, "Delete")
    ]
    assert (steps[10].new, steps[12].next, steps[12].errornext, steps[15].next) == (10, 13, 15, 14)
    job = Job.objects.get(spool=spool)
    assert (job.generation, job.state, job.status, job.timestamp) == (1, 10, JobStatus.WAITING, start)


def test_demo_initialize_waits_for_its_files_then_moves_on(now):
    now("2026-03-02T10:00:00Z")
    demo_load()
    job = Job.objects.get(spool__name="demo")
    jobs_dispatch()
    job.refresh_from_db()
    assert (job.state, job.attempt, job.status) == (10, 2, JobStatus.WAITING)  # the script answered 9: not there yet
    assert "input files not complete yet" in job.output_tail
    assert job.timestamp == dt.datetime(2026, 3, 2, 10, 0, 15, tzinfo=dt.UTC)
    assert history(job) == [(10, 1, 9)]


def test_demo_shows_the_error_path_a_zombie_and_a_paused_job(now):
    """What the product is for (DOMAIN §6): the payroll spool's import fails as soon as the dispatcher runs it."""
    now("2026-03-02T10:00:00Z")
    demo_load()
    payroll = Job.objects.filter(spool__name="payroll").order_by("generation")
    assert [(job.generation, job.status) for job in payroll] == [(1, JobStatus.WAITING), (2, JobStatus.ZOMBIE), (3, JobStatus.PAUSE)]
    assert payroll[2].comment

    while jobs_dispatch():
        pass

    failed = Job.objects.get(spool__name="payroll", generation=1)
    assert (failed.status, failed.return_code) == (JobStatus.ERROR, 3)
    assert "checksum mismatch" in failed.output_tail
