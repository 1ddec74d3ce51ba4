"""`manage.py monitor`: the job table in the terminal, once or as JSON, with filters."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import job_add, job_comment
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus


@pytest.fixture
def jobs(load_spool, now):
    now("2026-03-02T10:00:00Z")
    text = "[10]\ntext=Initialize\ncommand=true\n[12]\ntext=Archiving\ncommand=true\n"
    billing, payroll = load_spool(text, name="billing"), load_spool(text, name="payroll")
    made = [job_add(spool=billing, state=10, actor=TEST_ACTOR), job_add(spool=billing, state=12, actor=TEST_ACTOR), job_add(spool=payroll, state=12, actor=TEST_ACTOR)]
    Job.objects.filter(id=made[1].id).update(status=S.ERROR)
    Job.objects.filter(id=made[2].id).update(status=S.OK)
    job_comment(job=made[1], comment="disk full", actor=TEST_ACTOR)
    return made


def run(*args) -> str:
    out = io.StringIO()
    call_command("monitor", *args, stdout=out)
    return out.getvalue()


def test_once_prints_the_nine_columns_and_every_job(jobs, settings):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    text = run("--once")
    header = next(line for line in text.splitlines() if "Spoolname" in line)
    assert header.split() == ["ID", "Spoolname", "Generation", "State", "Attempt", "Type", "Status", "Timestamp", "Comment"]
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit() and "shown" not in line]
    assert [row[:7] for row in rows] == [
        [str(jobs[0].id), "billing", "000001", "10", "1", "Initialize", "Pause"],
        [str(jobs[1].id), "billing", "000002", "12", "1", "Archiving", "Error"],
        [str(jobs[2].id), "payroll", "000001", "12", "1", "Archiving", "OK"],
    ]
    assert rows[1][7:] == ["2026-03-02", "11:00:00", "disk", "full"]  # shown in PORTAL_TIME_ZONE
    assert "3 of 3 job(s) shown" in text and "scheduler running" in text


def test_filters_by_spool_and_status(jobs):
    text = run("--once", "--spool", "billing", "--status", "error,ok")
    assert "disk full" in text and "payroll" not in text and "Initialize" not in text


def test_json_prints_the_jobs_with_the_api_field_names(jobs):
    rows = json.loads(run("--json", "--status", "Error", "--status", "OK"))
    assert [(r["id"], r["spool"], r["status"]) for r in rows] == [(jobs[1].id, "billing", "Error"), (jobs[2].id, "payroll", "OK")]
    assert rows[0]["timestamp"] == "2026-03-02T10:00:00Z" and rows[0]["comment"] == "disk full"
    assert set(rows[0]) >= {"id", "spool", "generation", "state", "attempt", "type", "status", "timestamp", "comment"}


def test_an_unknown_status_is_refused(db):
    with pytest.raises(CommandError, match="unknown status Broken"):
        run("--once", "--status", "Broken")


def test_spool_filter_takes_a_comma_list(jobs):
    rows = json.loads(run("--json", "--spool", "billing,payroll"))
    assert [r["id"] for r in rows] == [job.id for job in jobs]


def test_a_live_table_cut_to_the_terminal_leaves_ok_jobs_out_first(jobs, load_spool):
    from scheduling.management.commands.monitor import render

    billing = Job.objects.get(id=jobs[0].id).spool
    newer_ok = [job_add(spool=billing, state=10, actor=TEST_ACTOR) for _ in range(3)]
    Job.objects.filter(id__in=[job.id for job in newer_ok]).update(status=S.OK)

    shown = render(Job.objects.select_related("spool").order_by("id"), None, fit=3)
    rows = shown.renderables[1].columns[0]._cells
    # the Pause and the Error job stay, with the newest OK job; older OK jobs give way
    assert rows == [str(jobs[0].id), str(jobs[1].id), str(newer_ok[-1].id)]
    assert "3 of 6 job(s) shown: OK jobs left out first" in str(shown.renderables[2])


@pytest.mark.parametrize(("width", "height"), [(100, 20), (60, 12), (200, 50)])
def test_the_live_view_keeps_its_promise_in_any_terminal_size(jobs, load_spool, width, height):
    """A long comment or a narrow terminal never pushes a Pause or an Error job off the screen."""
    from rich.console import Console

    from scheduling.management.commands.monitor import fitted
    from scheduling.workflows.selectors import jobs_filtered

    billing = Job.objects.get(id=jobs[0].id).spool
    newer_ok = [job_add(spool=billing, state=10, actor=TEST_ACTOR) for _ in range(60)]
    Job.objects.filter(id__in=[job.id for job in newer_ok]).update(status=S.OK)
    job_comment(job=jobs[0], comment="waiting for the bank to resend the file; " * 12, actor=TEST_ACTOR)

    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=False)
    console.print(fitted(jobs_filtered(), console))
    lines = console.file.getvalue().splitlines()

    assert len(lines) < height  # the last line stays for the cursor
    ids = [line.split()[0] for line in lines if line.split() and line.split()[0].isdigit()]
    assert str(jobs[0].id) in ids and str(jobs[1].id) in ids  # the Pause and the Error job
    assert "OK jobs left out first" in " ".join(lines[-3:])


def test_jobs_show_prints_the_job_in_full(jobs, now):
    from scheduling.workflows.models import JobAttempt

    job = jobs[1]
    JobAttempt.objects.create(
        job_id=job.id, state=12, attempt=1, command=["workflows/bin/archive.sh", "billing", "000002"], claim_token="6f1c1c56-2f0b-4f55-9b1f-3e8a07d1d9c1",
        claimed_at=job.timestamp, finished_at=job.timestamp, return_code=3, outcome="Error", status_after="Error",
    )
    Job.objects.filter(id=job.id).update(return_code=3, output_tail="archive.sh: disk full\n")

    text = io.StringIO()
    call_command("jobs", "show", str(job.id), stdout=text)
    text = text.getvalue()

    assert text.splitlines()[0].startswith(f"job {job.id} billing/000002 step 12 attempt 1: Error, timestamp 2026-03-02 10:00:00 UTC")
    for expected in ("command       workflows/bin/archive.sh billing 000002", "return code   3", "    archive.sh: disk full",
                     "attempts (1)", "return code 3, Error", "audit (2)", "job.comment", "waiting for   -"):
        assert expected in text
    with pytest.raises(CommandError, match="no job 999999"):
        call_command("jobs", "show", "999999")
