"""Operator commands (DOMAIN §3): exact preconditions and results, the same through service, CLI and API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from portal.models import AuditEntry
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import (
    InvalidInput,
    JobConflict,
    job_add,
    job_comment,
    job_disable,
    job_enable,
    job_pause,
    job_reset,
    job_schedule,
    job_start,
)
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
EARLIER = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 3, 5, 7, 30, tzinfo=dt.UTC)
WORKFLOW = "[1]\ntext=Import\ncommand=true\nnext=2\n[2]\ntext=Export\ncommand=true\n"


@pytest.fixture
def job_in(load_spool, now):
    """A job at step 2, attempt 3, stop flag set, due earlier, in the given status."""
    now(NOW.isoformat())
    spool = load_spool(WORKFLOW)

    def make(status: str) -> Job:
        job = job_add(spool=spool, state=2, at=EARLIER, actor=TEST_ACTOR)
        Job.objects.filter(id=job.id).update(status=status, attempt=3, stop_flag=True)
        job.refresh_from_db()
        return job

    return make


def fields(job: Job) -> tuple:
    job.refresh_from_db()
    return (job.status, job.state, job.attempt, job.timestamp, job.stop_flag)


# (command, call, allowed statuses, expected (status, state, attempt, timestamp, stop_flag) from a given status)
COMMANDS = {
    "start": (lambda job: job_start(job=job, actor=TEST_ACTOR), {S.WAITING, S.PAUSE}, lambda st: (S.WAITING, 2, 3, NOW, False)),
    "pause": (lambda job: job_pause(job=job, actor=TEST_ACTOR), {S.WAITING, S.DISABLED, S.RUNNING},
              lambda st: (S.RUNNING, 2, 3, EARLIER, True) if st == S.RUNNING else (S.PAUSE, 2, 3, EARLIER, True)),
    "reset": (lambda job: job_reset(job=job, actor=TEST_ACTOR), {S.ERROR, S.ZOMBIE}, lambda st: (S.WAITING, 2, 1, NOW, False)),
    "schedule": (lambda job: job_schedule(job=job, timestamp=LATER, actor=TEST_ACTOR), {S.WAITING, S.PAUSE, S.ERROR, S.DISABLED},
                 lambda st: (st, 2, 3, LATER, True)),
    "disable": (lambda job: job_disable(job=job, actor=TEST_ACTOR), {S.WAITING, S.PAUSE, S.ERROR}, lambda st: (S.DISABLED, 2, 3, EARLIER, True)),
    "enable": (lambda job: job_enable(job=job, actor=TEST_ACTOR), {S.DISABLED}, lambda st: (S.PAUSE, 2, 3, EARLIER, True)),
    "comment": (lambda job: job_comment(job=job, comment="call Ops", actor=TEST_ACTOR), set(S.values), lambda st: (st, 2, 3, EARLIER, True)),
}
CASES = [(command, status) for command in COMMANDS for status in S.values]


@pytest.mark.parametrize(("command", "status"), CASES)
def test_each_command_from_each_status(job_in, command, status):
    call, allowed, expected = COMMANDS[command]
    job = job_in(status)
    before = fields(job)

    if status in allowed:
        call(job)
        assert fields(job) == expected(status)
        entry = AuditEntry.objects.get(action=f"job.{command}")
        assert entry.object_id == str(job.id) and entry.before["status"] == status and entry.actor_name == TEST_ACTOR
    else:
        with pytest.raises(JobConflict) as refused:
            call(job)
        assert refused.value.status == status and f"it is {status}" in str(refused.value)
        assert fields(job) == before
        assert not AuditEntry.objects.filter(action=f"job.{command}").exists()


def test_comment_changes_the_comment(job_in):
    job = job_comment(job=job_in(S.OK), comment="$(reboot) checked by Ann", actor=TEST_ACTOR)
    job.refresh_from_db()
    assert job.comment == "$(reboot) checked by Ann"


def test_add_gives_the_spools_next_generation_in_pause(load_spool, now):
    now(NOW.isoformat())
    spool = load_spool(WORKFLOW)
    first = job_add(spool=spool, state=1, actor=TEST_ACTOR)
    second = job_add(spool="billing", state=2, at=LATER, actor=TEST_ACTOR)
    assert (first.generation, first.state, first.status, first.attempt, first.type, first.timestamp) == (1, 1, S.PAUSE, 1, "Import", NOW)
    assert (second.generation, second.type, second.timestamp) == (2, "Export", LATER)
    assert AuditEntry.objects.filter(action="job.add").count() == 2


def test_add_refuses_a_step_the_workflow_lacks_and_an_unknown_spool(load_spool):
    load_spool(WORKFLOW)
    with pytest.raises(InvalidInput, match="no step 7") as caught:
        job_add(spool="billing", state=7, actor=TEST_ACTOR)
    assert caught.value.field == "state"
    with pytest.raises(InvalidInput, match="no spool named 'nope'"):
        job_add(spool="nope", state=1, actor=TEST_ACTOR)
    assert not Job.objects.exists()


def test_a_viewer_may_not_command_and_an_operator_may(job_in, viewer, operator):
    job = job_in(S.WAITING)
    with pytest.raises(PermissionDenied):
        job_pause(job=job, actor=viewer)
    assert job_pause(job=job, actor=operator).status == S.PAUSE
    assert AuditEntry.objects.get(action="job.pause").actor_name == "operator"


# --- the CLI ---------------------------------------------------------------------


def test_cli_commands_a_whole_spool_or_one_generation(job_in, capsys):
    waiting, error, paused = job_in(S.WAITING), job_in(S.ERROR), job_in(S.PAUSE)

    call_command("jobs", "pause", "billing")
    assert [fields(j)[0] for j in (waiting, error, paused)] == [S.PAUSE, S.ERROR, S.PAUSE]

    call_command("jobs", "reset", "billing", str(error.generation), "--reason", "disk cleaned")
    assert fields(error)[:3] == (S.WAITING, 2, 1)
    assert AuditEntry.objects.get(action="job.reset").reason == "disk cleaned"
    assert f"job {error.id} billing/{error.generation:06d} step 2 attempt 1: Waiting" in capsys.readouterr().out


def test_cli_refuses_with_the_status_and_exits_non_zero(job_in, capsys):
    job = job_in(S.OK)
    with pytest.raises(CommandError, match="no job of spool billing allows it"):
        call_command("jobs", "reset", "billing", str(job.generation))
    assert f"cannot reset job {job.id}: it is OK" in capsys.readouterr().err
    with pytest.raises(CommandError, match=f"cannot schedule job {job.id}: it is OK"):
        call_command("jobs", "schedule", str(job.id), "2026-03-09T10:00:00Z")


def test_cli_add_schedule_and_comment(load_spool, now, capsys):
    now(NOW.isoformat())
    load_spool(WORKFLOW)
    call_command("jobs", "add", "billing", "2", "--at", "2026-03-04T06:00:00+01:00")
    job = Job.objects.get()
    assert (job.state, job.status, job.timestamp) == (2, S.PAUSE, dt.datetime(2026, 3, 4, 5, 0, tzinfo=dt.UTC))

    call_command("jobs", "schedule", str(job.id), "2026-03-05T07:30:00Z")
    call_command("jobs", "comment", str(job.id), "moved; ask Bob")
    job.refresh_from_db()
    assert (job.timestamp, job.comment) == (LATER, "moved; ask Bob")


def test_cli_starting_a_named_generation_ignores_the_time_window_once(job_in):
    job = job_in(S.PAUSE)
    call_command("jobs", "start", "billing", str(job.generation))
    job.refresh_from_db()
    assert (job.status, job.ignore_time_window) == (S.WAITING, True)


def test_cli_acts_as_a_named_user_with_their_role(job_in, viewer, operator):
    job = job_in(S.WAITING)
    with pytest.raises(CommandError, match="needs the Operator role"):
        call_command("jobs", "pause", "billing", "--user", "viewer")
    call_command("jobs", "pause", "billing", "--user", "operator")
    assert fields(job)[0] == S.PAUSE
    assert AuditEntry.objects.get(action="job.pause").actor_name == "operator"


def test_cli_shutdown_resume_and_reload_are_audited(load_spool, write_workflow):
    from scheduling.workflows.models import SchedulerControl

    spool = load_spool(WORKFLOW)
    call_command("jobs", "shutdown", "--reason", "database upgrade")
    assert SchedulerControl.load().shut_down
    call_command("jobs", "resume-scheduler")
    assert not SchedulerControl.load().shut_down
    write_workflow(WORKFLOW.replace("Export", "Send"), "billing.ini")
    call_command("jobs", "reload")
    spool.refresh_from_db()
    assert (spool.workflow.number, spool.workflow.workflow.step(2).text) == (2, "Send")
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["workflow.load", "scheduler.shutdown", "scheduler.resume", "workflow.load", "workflows.reload"]


def test_cli_reload_of_a_bad_file_exits_non_zero_and_keeps_the_workflow(load_spool, write_workflow):
    spool = load_spool(WORKFLOW)
    write_workflow(WORKFLOW.replace("next=2", "next=3"), "billing.ini")
    with pytest.raises(CommandError, match=r"\[1\] next = '3'"):
        call_command("jobs", "reload", "billing")
    spool.refresh_from_db()
    assert spool.workflow.number == 1


# --- start and reset at a time (DOMAIN §5) ------------------------------------------------


def test_cli_reset_at_and_start_at_make_the_job_waiting_then(job_in, capsys, settings):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    error, paused = job_in(S.ERROR), job_in(S.PAUSE)

    call_command("jobs", "reset", "billing", str(error.generation), "--at", "2026-03-03T06:30", "--reason", "rerun after the fix")
    call_command("jobs", "start", "billing", str(paused.generation), "--at", "2026-03-03T07:00:00Z")

    assert fields(error)[:3] == (S.WAITING, 2, 1)
    assert Job.objects.get(id=error.id).timestamp == dt.datetime(2026, 3, 3, 5, 30, tzinfo=dt.UTC)  # 06:30 in Berlin
    assert Job.objects.get(id=paused.id).timestamp == dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC)
    assert AuditEntry.objects.get(action="job.reset").reason == "rerun after the fix"
    assert "timestamp 2026-03-03 06:30:00 Europe/Berlin" in capsys.readouterr().out
    assert dispatched_now() == 0  # not before its time


def test_cli_at_is_refused_for_commands_that_take_no_time(job_in):
    job_in(S.WAITING)
    with pytest.raises(CommandError, match="unrecognized arguments: --at"):
        call_command("jobs", "pause", "billing", "--at", "2026-03-03T07:00:00Z")


def test_api_reset_and_start_take_a_timestamp(job_in, api_client_for, operator):
    error, paused, zombie = job_in(S.ERROR), job_in(S.PAUSE), job_in(S.ZOMBIE)
    client = api_client_for(operator)

    answer = client.post(f"/api/v1/jobs/{error.id}/reset/", {"timestamp": "2026-03-03T06:30:00+01:00", "reason": "after the fix"}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["timestamp"], answer.json()["attempt"]) == ("Waiting", "2026-03-03T05:30:00Z", 1)
    answer = client.post(f"/api/v1/jobs/{paused.id}/start/", {"timestamp": "2026-03-03T07:00:00Z"}, format="json")
    assert (answer.json()["status"], answer.json()["timestamp"]) == ("Waiting", "2026-03-03T07:00:00Z")
    assert client.post(f"/api/v1/jobs/{zombie.id}/reset/", {}, format="json").json()["timestamp"] == "2026-03-02T10:00:00Z"  # now
    assert client.post(f"/api/v1/jobs/{paused.id}/start/", {"timestamp": "07:00"}, format="json").status_code == 400
    assert AuditEntry.objects.get(action="job.reset", object_id=str(error.id)).reason == "after the fix"
    assert dispatched_now() == 1  # the zombie's reset, due now; the others wait for their time


def test_schedule_of_an_error_job_keeps_its_status_and_says_it_needs_a_reset(job_in, api_client_for, operator, capsys):
    error = job_in(S.ERROR)
    answer = api_client_for(operator).post(f"/api/v1/jobs/{error.id}/schedule/", {"timestamp": "2026-03-03T07:00:00Z"}, format="json")
    body = answer.json()
    assert (answer.status_code, body["status"], body["timestamp"]) == (200, "Error", "2026-03-03T07:00:00Z")
    assert "reset" in body["note"] and "--at" in body["note"]

    call_command("jobs", "schedule", str(error.id), "2026-03-04T07:00:00Z")
    assert "stays in Error" in capsys.readouterr().out
    assert fields(error)[0] == S.ERROR


def dispatched_now() -> int:
    from scheduling.workflows.dispatcher import jobs_dispatch

    return jobs_dispatch()
