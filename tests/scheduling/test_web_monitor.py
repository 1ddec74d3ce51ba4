"""The web monitor at /monitor/: login, what each role sees, and the data it refreshes from."""

from __future__ import annotations

import pytest

from portal.models import MessageStatus, OutboundMessage
from scheduling.workflows.models import JobStatus
from scheduling.workflows.services import job_add, job_start
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

WORKFLOW = "[10]\ntext=Initialize\ncommand=true\nnext=11\n[11]\ntext=Prepare\ncommand=true\n"
NINE_COLUMNS = ["ID", "Spoolname", "Generation", "State", "Attempt", "Type", "Status", "Timestamp", "Comment"]


def test_without_login_the_monitor_shows_only_a_login_form(client):
    answer = client.get("/monitor/", follow=True)
    page = answer.content.decode()
    assert answer.status_code == 200
    assert 'name="username"' in page and 'name="password"' in page
    assert "Spoolname" not in page
    assert client.get("/monitor/data/").status_code == 401


def test_login_leads_to_the_monitor_with_the_nine_columns(client, viewer):
    answer = client.post("/monitor/login/", {"username": "viewer", "password": "pw-viewer", "next": "/monitor/"}, follow=True)
    page = answer.content.decode()
    assert answer.status_code == 200
    for column in NINE_COLUMNS:
        assert f">{column}</th>" in page


def test_viewer_sees_no_command_buttons_operator_and_administrator_do(client, viewer, operator, administrator):
    client.force_login(viewer)
    page = client.get("/monitor/").content.decode()
    assert 'data-can-operate="0"' in page and "Shut down scheduler" not in page and ">Actions</th>" not in page

    client.force_login(operator)
    page = client.get("/monitor/").content.decode()
    assert 'data-can-operate="1"' in page and ">Actions</th>" in page and "Shut down scheduler" not in page

    client.force_login(administrator)
    assert "Shut down scheduler" in client.get("/monitor/").content.decode()


def test_feeder_may_not_see_the_monitor(client, feeder):
    client.force_login(feeder)
    assert client.get("/monitor/").status_code == 403
    assert client.get("/monitor/data/").status_code == 403


def test_viewer_commands_are_refused_by_the_server(client, viewer, load_spool):
    job = job_add(spool=load_spool(WORKFLOW), state=10, actor=TEST_ACTOR)
    client.force_login(viewer)
    answer = client.post(f"/api/v1/jobs/{job.id}/start/", {}, content_type="application/json")
    assert answer.status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSE


def test_data_lists_jobs_newest_first_with_filters_and_keyset_pages(client, viewer, load_spool, now):
    now("2026-03-02T10:00:00Z")
    spool = load_spool(WORKFLOW)
    other = load_spool(WORKFLOW, name="other")
    jobs = [job_add(spool=spool, state=10, actor=TEST_ACTOR) for _ in range(60)]
    job_start(job=jobs[0], actor=TEST_ACTOR)
    job_add(spool=other, state=11, actor=TEST_ACTOR)
    client.force_login(viewer)

    first = client.get("/monitor/data/").json()
    assert [row["id"] for row in first["jobs"]["rows"]][:2] == [jobs[-1].id + 1, jobs[-1].id]
    assert len(first["jobs"]["rows"]) == 50
    assert first["jobs"]["newer"] is None
    assert first["jobs"]["spools"] == ["billing", "other"]
    row = first["jobs"]["rows"][1]
    assert row == {
        "id": jobs[-1].id, "spool": "billing", "generation": 60, "state": 10, "attempt": 1, "type": "Initialize",
        "status": "Pause", "timestamp": "2026-03-02T10:00:00Z", "comment": "",
    }

    second = client.get("/monitor/data/", {"before": first["jobs"]["older"]}).json()
    assert [r["id"] for r in second["jobs"]["rows"]] == [j.id for j in reversed(jobs[:11])]
    assert second["jobs"]["older"] is None
    back = client.get("/monitor/data/", {"after": second["jobs"]["newer"]}).json()
    assert [r["id"] for r in back["jobs"]["rows"]] == [r["id"] for r in first["jobs"]["rows"]]

    waiting = client.get("/monitor/data/", {"status": "Waiting"}).json()["jobs"]["rows"]
    assert [r["id"] for r in waiting] == [jobs[0].id]
    others = client.get("/monitor/data/", {"spool": "other"}).json()["jobs"]["rows"]
    assert [r["spool"] for r in others] == ["other"]


def test_data_shows_outbox_heartbeat_and_tasks(client, viewer, now):
    now("2026-03-02T10:00:00Z")
    OutboundMessage.objects.create(kind="control_message", dedupe_key="x", payload={}, status=MessageStatus.FAILED, last_error="refused")
    client.force_login(viewer)
    data = client.get("/monitor/data/").json()
    assert data["outbox"]["failed_count"] == 1
    assert data["outbox"]["failed"][0]["last_error"] == "refused"
    assert data["heartbeat"] == {"last_tick_at": None, "stale": False}
    assert data["scheduler"] == {"shutdown": False}
    assert data["now"] == "2026-03-02T10:00:00Z"
