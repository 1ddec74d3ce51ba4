"""Operator commands as operators type them: CLI times and --now, refusals naming statuses, API spellings."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from portal.models import AuditEntry
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import job_add
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus
WORKFLOW = "[1]\ntext=Import\ncommand=true\nnext=2\n[2]\ntext=Export\ncommand=true\n"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def spool(load_spool, now):
    now("2026-03-02T10:00:00Z")
    return load_spool(WORKFLOW)


def test_cli_times_without_an_offset_are_read_in_the_portal_time_zone(spool, settings):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    call_command("jobs", "add", "billing", "2", "--at", "2026-03-04T06:00")
    job = Job.objects.get()
    assert job.timestamp == utc(2026, 3, 4, 5, 0)
    call_command("jobs", "schedule", str(job.id), "2026-07-01T08:30:00")
    job.refresh_from_db()
    assert job.timestamp == utc(2026, 7, 1, 6, 30)  # summer time
    with pytest.raises(CommandError, match="not an ISO-8601"):
        call_command("jobs", "schedule", str(job.id), "tomorrow")


def test_cli_commands_take_now(spool):
    call_command("jobs", "add", "billing", "1", "--now", "2026-03-05T09:00:00Z")
    job = Job.objects.get()
    assert (job.status, job.timestamp) == (S.PAUSE, utc(2026, 3, 5, 9, 0))
    call_command("jobs", "start", "billing", "1", "--now", "2026-03-06T07:15:00Z")
    job.refresh_from_db()
    assert (job.status, job.timestamp) == (S.WAITING, utc(2026, 3, 6, 7, 15))
    assert AuditEntry.objects.get(action="job.start").at == utc(2026, 3, 6, 7, 15)


def test_cli_refusal_of_a_whole_spool_names_the_statuses_its_jobs_are_in(spool):
    for status in (S.OK, S.OK, S.RUNNING):
        job = job_add(spool=spool, state=1, actor=TEST_ACTOR)
        Job.objects.filter(id=job.id).update(status=status)
    with pytest.raises(CommandError, match=r"no job of spool billing allows it; its jobs are OK \(2\), Running \(1\)"):
        call_command("jobs", "reset", "billing")
    assert not AuditEntry.objects.filter(action="job.reset").exists()


def test_api_add_also_at_jobs_add_with_at(spool, api_client_for, operator):
    answer = api_client_for(operator).post("/api/v1/jobs/add/", {"spool": "billing", "state": 2, "at": "2026-03-04T06:00:00Z"}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["spool"], body["state"], body["status"], body["attempt"], body["generation"], body["timestamp"]) == (
        "billing", 2, "Pause", 1, 1, "2026-03-04T06:00:00Z",
    )


def test_api_schedule_and_comment_take_the_cli_spellings_too(spool, api_client_for, operator):
    job = job_add(spool=spool, state=1, actor=TEST_ACTOR)
    client = api_client_for(operator)
    assert client.post(f"/api/v1/jobs/{job.id}/schedule/", {"at": "2026-03-09T10:00:00Z"}, format="json").json()["timestamp"] == "2026-03-09T10:00:00Z"
    assert client.post(f"/api/v1/jobs/{job.id}/comment/", {"text": "ask Bob"}, format="json").json()["comment"] == "ask Bob"
    missing = client.post(f"/api/v1/jobs/{job.id}/schedule/", {}, format="json")
    assert missing.status_code == 400 and "timestamp" in missing.json()


def test_api_filters_take_comma_lists_and_any_case(spool, api_client_for, viewer, load_spool):
    other = load_spool(WORKFLOW, name="payroll")
    ids = {}
    for owner, status in ((spool, S.ERROR), (spool, S.ZOMBIE), (spool, S.OK), (other, S.ERROR)):
        job = job_add(spool=owner, state=1, actor=TEST_ACTOR)
        Job.objects.filter(id=job.id).update(status=status)
        ids[(owner.name, status)] = job.id
    client = api_client_for(viewer)

    def listed(query: str) -> list[int]:
        answer = client.get(f"/api/v1/jobs/?{query}")
        assert answer.status_code == 200, answer.content
        return [row["id"] for row in answer.json()["results"]]

    assert listed("status=Error,Zombie&spool=billing") == [ids[("billing", S.ERROR)], ids[("billing", S.ZOMBIE)]]
    assert listed("status=error") == [ids[("billing", S.ERROR)], ids[("payroll", S.ERROR)]]
    assert listed("spool=billing,payroll&status=Error") == [ids[("billing", S.ERROR)], ids[("payroll", S.ERROR)]]
    assert len(listed("")) == 4
    assert client.get("/api/v1/jobs/?status=Error,Broken").status_code == 400


def test_cli_resume_is_also_spelled_as_the_api_spells_it(spool):
    from scheduling.workflows.models import SchedulerControl

    call_command("jobs", "shutdown")
    call_command("jobs", "resume")
    assert not SchedulerControl.load().shut_down
    assert list(AuditEntry.objects.filter(action__startswith="scheduler.").order_by("id").values_list("action", flat=True)) == [
        "scheduler.shutdown", "scheduler.resume",
    ]


def test_cli_reload_of_an_unknown_spool_is_refused(spool):
    with pytest.raises(CommandError, match="no spool named nope"):
        call_command("jobs", "reload", "billing", "nope")
    assert not AuditEntry.objects.filter(action="workflows.reload").exists()
