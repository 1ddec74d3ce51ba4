"""The jobs API: fields, filters, `add`, commands with their 409, spools and the scheduler switch."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry
from scheduling.workflows.models import Job, JobStatus, SchedulerControl
from scheduling.workflows.services import job_add
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus
WORKFLOW = "[1]\ntext=Import\ncommand=true\nnext=2\n[2]\ntext=Export\ncommand=true\n"


@pytest.fixture
def spools(load_spool, now):
    now("2026-03-02T10:00:00Z")
    return load_spool(WORKFLOW, name="billing"), load_spool(WORKFLOW, name="payroll")


def make(spool, state, status):
    job = job_add(spool=spool, state=state, actor=TEST_ACTOR)
    Job.objects.filter(id=job.id).update(status=status)
    return job


def test_jobs_list_shows_every_status_in_id_order_with_the_nine_columns(spools, api_client_for, viewer):
    billing, payroll = spools
    ids = [make(billing, 1, status).id for status in S.values] + [make(payroll, 2, S.OK).id]

    answer = api_client_for(viewer).get("/api/v1/jobs/")

    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert [row["id"] for row in rows] == ids
    assert [row["status"] for row in rows] == [*S.values, "OK"]
    first = rows[0]
    for name in ("id", "spool", "generation", "state", "attempt", "type", "status", "timestamp", "comment",
                 "stop_flag", "started", "finished", "return_code", "output_tail"):
        assert name in first
    assert (first["spool"], first["generation"], first["state"], first["attempt"], first["type"]) == ("billing", 1, 1, 1, "Import")
    assert first["timestamp"] == "2026-03-02T10:00:00Z"


def test_jobs_filter_by_spool_name_status_and_state(spools, api_client_for, viewer):
    billing, payroll = spools
    make(billing, 1, S.ERROR)
    wanted = make(payroll, 2, S.ERROR)
    make(payroll, 1, S.ERROR)
    make(payroll, 2, S.OK)
    client = api_client_for(viewer)

    rows = client.get("/api/v1/jobs/", {"spool": "payroll", "status": "Error", "state": 2}).json()["results"]
    assert [row["id"] for row in rows] == [wanted.id]
    assert len(client.get("/api/v1/jobs/?status=Error&status=OK").json()["results"]) == 4
    assert client.get("/api/v1/jobs/", {"status": "Broken"}).status_code == 400


def test_add_through_the_api_names_the_spool_by_name(spools, api_client_for, operator):
    client = api_client_for(operator)
    answer = client.post("/api/v1/jobs/", {"spool": "billing", "state": 2, "timestamp": "2026-03-03T07:00:00+01:00"}, format="json")
    assert answer.status_code == 201
    body = answer.json()
    assert (body["spool"], body["generation"], body["state"], body["status"], body["attempt"], body["type"]) == ("billing", 1, 2, "Pause", 1, "Export")
    assert body["timestamp"] == "2026-03-03T06:00:00Z"
    assert client.post("/api/v1/jobs/", {"spool": "billing", "state": 1}, format="json").json()["generation"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spool": "billing", "state": 9}, "state"),
        ({"spool": "nobody", "state": 1}, "spool"),
        ({"spool": "billing"}, "state"),
        ({"spool": "billing", "state": 1, "timestamp": "2026-03-03 07:00"}, "timestamp"),
        ({"spool": "billing", "state": 1, "timestamp": "tomorrow"}, "timestamp"),
    ],
)
def test_bad_add_is_400_naming_the_field_and_writes_nothing(spools, api_client_for, operator, body, field):
    answer = api_client_for(operator).post("/api/v1/jobs/", body, format="json")
    assert answer.status_code == 400
    assert field in answer.json()
    assert not Job.objects.exists()


def test_a_command_whose_precondition_fails_is_409_with_the_current_status(spools, api_client_for, operator):
    job = make(spools[0], 1, S.RUNNING)
    answer = api_client_for(operator).post(f"/api/v1/jobs/{job.id}/reset/", {}, format="json")
    assert answer.status_code == 409
    assert answer.json()["status"] == "Running" and answer.json()["id"] == job.id
    job.refresh_from_db()
    assert job.status == S.RUNNING


def test_commands_through_the_api(spools, api_client_for, operator):
    job = make(spools[0], 1, S.WAITING)
    client = api_client_for(operator)
    url = f"/api/v1/jobs/{job.id}"

    assert client.post(f"{url}/pause/", {"reason": "month end"}, format="json").json()["status"] == "Pause"
    assert client.post(f"{url}/schedule/", {"timestamp": "2026-03-04T00:00:00Z"}, format="json").json()["timestamp"] == "2026-03-04T00:00:00Z"
    assert client.post(f"{url}/disable/").json()["status"] == "Disabled"
    assert client.post(f"{url}/enable/").json()["status"] == "Pause"
    assert client.post(f"{url}/comment/", {"comment": "ask Ann"}, format="json").json()["comment"] == "ask Ann"
    started = client.post(f"{url}/start/").json()
    assert (started["status"], started["timestamp"]) == ("Waiting", "2026-03-02T10:00:00Z")
    assert client.post(f"{url}/schedule/", {"timestamp": "soon"}, format="json").status_code == 400
    actions = list(AuditEntry.objects.filter(object_type="scheduling.Job", object_id=str(job.id)).order_by("id").values_list("action", flat=True))
    assert actions == ["job.add", "job.pause", "job.schedule", "job.disable", "job.enable", "job.comment", "job.start"]
    assert AuditEntry.objects.get(action="job.pause").reason == "month end"


def test_viewers_read_but_may_not_command(spools, api_client_for, viewer, feeder):
    job = make(spools[0], 1, S.WAITING)
    client = api_client_for(viewer)
    assert client.get(f"/api/v1/jobs/{job.id}/").status_code == 200
    assert client.post(f"/api/v1/jobs/{job.id}/pause/").status_code == 403
    assert client.post("/api/v1/jobs/", {"spool": "billing", "state": 1}, format="json").status_code == 403
    assert api_client_for(feeder).get("/api/v1/jobs/").status_code == 403
    assert api_client_for(None).get("/api/v1/jobs/").status_code == 401
    job.refresh_from_db()
    assert job.status == S.WAITING


def test_attempt_history_of_a_job(spools, api_client_for, viewer, waiting_job):
    from scheduling.workflows.dispatcher import jobs_dispatch

    job = waiting_job(spools[0], 1)
    jobs_dispatch()
    rows = api_client_for(viewer).get(f"/api/v1/jobs/{job.id}/attempts/").json()
    assert [(r["state"], r["attempt"], r["return_code"], r["command"]) for r in rows] == [(1, 1, 0, ["true"]), (2, 1, 0, ["true"])]
    assert rows[0]["outcome"] == "next step 2" and rows[1]["outcome"] == "OK"
    assert rows[0]["finished"] == "2026-03-02T10:00:00Z"


def test_spools_show_the_workflow_in_force(spools, api_client_for, viewer):
    rows = api_client_for(viewer).get("/api/v1/spools/").json()["results"]
    assert [row["name"] for row in rows] == ["billing", "payroll"]
    assert rows[0]["workflow_version"] == 1 and len(rows[0]["workflow_checksum"]) == 64
    assert [step["text"] for step in rows[0]["steps"]] == ["Import", "Export"]


def test_administrators_disable_and_reload_spools(spools, api_client_for, administrator, operator, write_workflow):
    billing = spools[0]
    assert api_client_for(operator).patch(f"/api/v1/spools/{billing.id}/", {"enabled": False}, format="json").status_code == 403
    admin = api_client_for(administrator)
    assert admin.patch(f"/api/v1/spools/{billing.id}/", {"enabled": False}, format="json").json()["enabled"] is False
    assert AuditEntry.objects.filter(action="spool.disable").exists()

    write_workflow(WORKFLOW.replace("Import", "Fetch"), "billing.ini")
    answer = admin.post(f"/api/v1/spools/{billing.id}/reload/", {}, format="json")
    assert answer.status_code == 200 and answer.json()["workflow_version"] == 2

    write_workflow("[1]\ncommand=true\nnext=5\n", "billing.ini")
    refused = admin.post(f"/api/v1/spools/{billing.id}/reload/", {}, format="json")
    assert refused.status_code == 400 and "[1] next = '5'" in refused.json()["workflow_file"][0]


def test_scheduler_shutdown_resume_and_reload_are_for_administrators(spools, api_client_for, administrator, operator, viewer, write_workflow):
    assert api_client_for(operator).post("/api/v1/scheduler/shutdown/").status_code == 403
    admin = api_client_for(administrator)

    answer = admin.post("/api/v1/scheduler/shutdown/", {"reason": "upgrade"}, format="json")
    assert answer.status_code == 200 and answer.json()["shut_down"] is True
    assert SchedulerControl.load().shut_down
    state = api_client_for(viewer).get("/api/v1/scheduler/").json()
    assert (state["shut_down"], state["changed_by"], state["reason"]) == (True, "administrator", "upgrade")
    assert admin.post("/api/v1/scheduler/resume/").json()["shut_down"] is False

    write_workflow(WORKFLOW.replace("next=2", "next=4"), "payroll.ini")
    reload = admin.post("/api/v1/scheduler/reload/")
    assert reload.status_code == 400
    assert [r["spool"] for r in reload.json()["loaded"]] == ["billing"]
    assert reload.json()["refused"][0]["spool"] == "payroll"


def test_a_command_on_a_whole_spool_through_the_api_as_the_cli_gives_it(spools, api_client_for, operator, viewer):
    billing, _ = spools
    paused, error, ok = make(billing, 1, S.PAUSE), make(billing, 1, S.ERROR), make(billing, 2, S.OK)
    client = api_client_for(operator)

    answer = client.post(f"/api/v1/spools/{billing.id}/command/", {"command": "start", "timestamp": "2026-03-03T06:00:00Z", "reason": "after the fix"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["changed"] == [paused.id]
    job = Job.objects.get(id=paused.id)
    assert (job.status, job.timestamp.isoformat()) == (S.WAITING, "2026-03-03T06:00:00+00:00")
    assert AuditEntry.objects.get(action="job.start").reason == "after the fix"

    answer = client.post(f"/api/v1/spools/{billing.id}/command/", {"command": "reset", "generation": ok.generation}, format="json")
    assert answer.status_code == 409 and "OK (1)" in answer.json()["detail"]
    answer = client.post(f"/api/v1/spools/{billing.id}/command/", {"command": "pause", "timestamp": "2026-03-03T06:00:00Z"}, format="json")
    assert answer.status_code == 400 and "pause takes no time" in answer.json()["timestamp"][0]
    assert client.post(f"/api/v1/spools/{billing.id}/command/", {"command": "explode"}, format="json").status_code == 400
    assert api_client_for(viewer).post(f"/api/v1/spools/{billing.id}/command/", {"command": "pause"}, format="json").status_code == 403
    assert Job.objects.get(id=error.id).status == S.ERROR
