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
