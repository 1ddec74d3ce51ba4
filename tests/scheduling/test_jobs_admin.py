"""The admin: jobs with the nine columns and the command actions, spools, the scheduler switch."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from portal import roles
from portal.models import AuditEntry
from scheduling.workflows.models import Job, JobStatus, SchedulerControl, Spool
from scheduling.workflows.services import job_add
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus
WORKFLOW = "[1]\ntext=Import\ncommand=true\n"


def staff(username: str, role: str) -> User:
    user = User.objects.create_user(username=username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def job(load_spool, now):
    now("2026-03-02T10:00:00Z")
    return job_add(spool=load_spool(WORKFLOW), state=1, actor=TEST_ACTOR)


def test_jobs_changelist_shows_the_nine_columns_to_a_viewer(client, job):
    client.force_login(staff("vera", roles.VIEWER))
    answer = client.get("/admin/scheduling/job/")
    assert answer.status_code == 200
    changelist = answer.context["cl"]
    assert changelist.list_display[1:] == ["id", "spool", "generation_shown", "state", "attempt", "type", "status", "timestamp", "comment"]
    assert [job.id for job in changelist.result_list] == [job.id]
    assert "Import" in answer.content.decode() and ">000001<" in answer.content.decode()


def test_admin_actions_call_the_commands_and_report_refusals(client, job):
    client.force_login(staff("olga", roles.OPERATOR))
    answer = client.post("/admin/scheduling/job/", {"action": "job_start", "_selected_action": [job.id]}, follow=True)
    job.refresh_from_db()
    assert job.status == S.WAITING
    assert AuditEntry.objects.get(action="job.start").actor_name == "olga"

    answer = client.post("/admin/scheduling/job/", {"action": "job_enable", "_selected_action": [job.id]}, follow=True)
    assert f"cannot enable job {job.id}: it is Waiting (enable needs Disabled)" in [str(m) for m in answer.context["messages"]]


def test_editing_the_timestamp_reschedules_through_the_schedule_command(client, job):
    client.force_login(staff("olga", roles.OPERATOR))
    answer = client.post(
        f"/admin/scheduling/job/{job.id}/change/",
        {"timestamp_0": "2026-03-05", "timestamp_1": "07:30:00", "comment": "after the audit", "attempts-TOTAL_FORMS": 0, "attempts-INITIAL_FORMS": 0},
    )
    assert answer.status_code == 302
    job.refresh_from_db()
    assert (job.timestamp.isoformat(), job.comment) == ("2026-03-05T07:30:00+00:00", "after the audit")
    assert {e.action for e in AuditEntry.objects.filter(object_type="scheduling.Job")} == {"job.add", "job.schedule", "job.comment"}


def test_a_viewer_cannot_run_admin_actions(client, job):
    client.force_login(staff("vera", roles.VIEWER))
    answer = client.post("/admin/scheduling/job/", {"action": "job_start", "_selected_action": [job.id]}, follow=True)
    assert "the start command needs the Operator role" in [str(m) for m in answer.context["messages"]]
    job.refresh_from_db()
    assert job.status == S.PAUSE


def test_spool_admin_loads_a_new_spool_and_refuses_a_bad_file(client, db, write_workflow):
    client.force_login(staff("ada", roles.ADMINISTRATOR))
    good = write_workflow(WORKFLOW, "good.ini")
    bad = write_workflow("[1]\ncommand=true\nmaxtime=25:00\n", "bad.ini")
    management = {"workflow_versions-TOTAL_FORMS": 0, "workflow_versions-INITIAL_FORMS": 0}

    refused = client.post("/admin/scheduling/spool/add/", {"name": "ledger", "workflow_file": bad, "enabled": "on", **management})
    assert refused.status_code == 200 and "[1] maxtime = &#x27;25:00&#x27;" in refused.content.decode()
    assert not Spool.objects.exists()

    assert client.post("/admin/scheduling/spool/add/", {"name": "ledger", "workflow_file": good, "enabled": "on", **management}).status_code == 302
    assert Spool.objects.get(name="ledger").workflow.number == 1


def test_scheduler_switch_in_the_admin_is_for_administrators(client, db):
    SchedulerControl.load()
    client.force_login(staff("olga", roles.OPERATOR))
    client.post("/admin/scheduling/schedulercontrol/", {"action": "shutdown", "_selected_action": [1]}, follow=True)
    assert not SchedulerControl.load().shut_down
    client.force_login(staff("ada", roles.ADMINISTRATOR))
    client.post("/admin/scheduling/schedulercontrol/", {"action": "shutdown", "_selected_action": [1]}, follow=True)
    assert SchedulerControl.load().shut_down
    assert Job.objects.count() == 0


def test_spool_admin_takes_a_latin1_file_as_the_load_does(client, db, tmp_path):
    client.force_login(staff("ada", roles.ADMINISTRATOR))
    path = tmp_path / "latin1.ini"
    path.write_bytes("; r\xe9sum\xe9 des \xe9tapes\n[1]\ntext=Import\ncommand=true\n".encode("latin-1"))
    management = {"workflow_versions-TOTAL_FORMS": 0, "workflow_versions-INITIAL_FORMS": 0}
    answer = client.post("/admin/scheduling/spool/add/", {"name": "legacy", "workflow_file": str(path), "enabled": "on", **management})
    assert answer.status_code == 302
    assert "résumé" in Spool.objects.get(name="legacy").workflow.text
