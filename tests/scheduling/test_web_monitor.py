"""The web monitor at /monitor/: login, what each role sees, and the data it refreshes from."""

from __future__ import annotations

import pytest

from portal.models import MessageStatus, OutboundMessage
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import job_add, job_start
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus

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
    assert 'id="reason"' not in page

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
    assert [spool["name"] for spool in first["jobs"]["spools"]] == ["billing", "other"]
    row = first["jobs"]["rows"][1]
    assert row == {
        "id": jobs[-1].id, "spool": "billing", "generation": 60, "state": 10, "attempt": 1, "type": "Initialize",
        "status": "Pause", "timestamp": "2026-03-02T10:00:00Z", "comment": "", "stop_flag": False, "waiting_for": None,
        "commands": ["start", "schedule", "disable", "comment"],
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
    assert data["scheduler"]["shutdown"] is False
    assert data["now"] == "2026-03-02T10:00:00Z"


# --- what needs attention comes first (DOMAIN §6) ---------------------------------------------------


def make_jobs(spool, statuses) -> list:
    made = []
    for status in statuses:
        job = job_add(spool=spool, state=10, actor=TEST_ACTOR)
        Job.objects.filter(id=job.id).update(status=status)
        made.append(job)
    return made


def test_the_feed_counts_jobs_per_status_and_lists_every_job_needing_an_eye_whatever_the_page(client, viewer, load_spool, now):
    now("2026-03-02T10:00:00Z")
    spool = load_spool(WORKFLOW)
    old_problems = make_jobs(spool, [S.ERROR, S.ZOMBIE, S.RUNNING])
    Job.objects.filter(id=old_problems[2].id).update(stop_flag=True)
    quiet_running = make_jobs(spool, [S.RUNNING])[0]
    make_jobs(spool, [S.OK] * 120)
    client.force_login(viewer)

    data = client.get("/monitor/data/").json()

    assert data["counts"] == {"Waiting": 0, "Running": 2, "OK": 120, "Error": 1, "Pause": 0, "Disabled": 0, "Zombie": 1}
    assert [row["id"] for row in data["attention"]["rows"]] == [job.id for job in reversed(old_problems)]
    assert all(row["id"] != old_problems[0].id for row in data["jobs"]["rows"])  # the table's first page is all OK
    assert quiet_running.id not in [row["id"] for row in data["attention"]["rows"]]
    filtered = client.get("/monitor/data/", {"spool": "nobody", "status": "OK"}).json()
    assert len(filtered["attention"]["rows"]) == 3  # a filter never hides what needs an eye


def test_the_feed_costs_the_same_queries_with_10_and_200_jobs(client, operator, load_spool, now, make_task):
    """Measured figures (SQLite and PostgreSQL alike) are in the report: flat, whatever the number of jobs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now("2026-03-02T10:00:00Z")
    spool = load_spool(WORKFLOW)
    make_task("scan")
    client.force_login(operator)
    mix = [S.OK, S.OK, S.OK, S.WAITING, S.ERROR, S.ZOMBIE, S.PAUSE, S.RUNNING, S.DISABLED, S.OK]
    counts = {}
    for total in (10, 200):
        make_jobs(spool, [mix[i % len(mix)] for i in range(total - Job.objects.count())])
        client.get("/monitor/data/")  # the session and the user are read once per request either way
        with CaptureQueriesContext(connection) as queries:
            data = client.get("/monitor/data/").json()
        assert sum(data["counts"].values()) == total
        counts[total] = len(queries)
    assert counts[10] == counts[200], counts


def test_the_job_detail_is_the_same_selector_as_jobs_show(client, viewer, feeder, load_spool, now):
    now("2026-03-02T10:00:00Z")
    job = make_jobs(load_spool(WORKFLOW), [S.ERROR])[0]
    Job.objects.filter(id=job.id).update(return_code=3, output_tail="checksum mismatch\n")
    client.force_login(viewer)

    detail = client.get(f"/monitor/data/jobs/{job.id}/").json()

    assert (detail["id"], detail["status"], detail["return_code"], detail["output_tail"]) == (job.id, "Error", 3, "checksum mismatch\n")
    assert [entry["action"] for entry in detail["audit"]] == ["job.add"]
    assert "reset" in detail["schedule_note"] and detail["commands"] == ["reset", "schedule", "disable", "comment"]
    assert client.get("/monitor/data/jobs/999999/").status_code == 404
    client.force_login(feeder)
    assert client.get(f"/monitor/data/jobs/{job.id}/").status_code == 403


def test_tasks_in_error_or_suspended_come_first_with_why_and_when_they_resume(client, viewer, make_task, now, operator):
    from scheduling.scheduler.models import SchedulerTask, TaskState
    from scheduling.scheduler.services import scheduler_task_suspend

    start = now("2026-03-02T10:00:00Z")
    make_task("a-fine"), make_task("b-broken"), make_task("c-held")
    SchedulerTask.objects.filter(name="b-broken").update(state=TaskState.ERROR, last_error="queue refused", consecutive_failures=2)
    scheduler_task_suspend(actor=operator, task=SchedulerTask.objects.get(name="c-held"), reason="bank holiday",
                           resume_at=start.replace(hour=14))
    client.force_login(viewer)

    tasks = client.get("/monitor/data/").json()["tasks"]

    assert [t["name"] for t in tasks] == ["b-broken", "c-held", "a-fine"]
    held = tasks[1]
    assert (held["suspended_reason"], held["suspended_by"], held["resume_at"]) == ("bank holiday", "operator", "2026-03-02T14:00:00Z")
    assert held["commands"] == ["disable", "resume"] and tasks[0]["last_error"] == "queue refused"


def test_a_failed_window_shows_at_once_with_who_and_why(client, operator, now):
    from monitoring.batches.demo import load_batch_demo
    from monitoring.batches.scan import batch_scan
    from monitoring.batches.services import batch_window_fail
    from portal import clock

    now("2026-03-10T09:17:00Z")
    load_batch_demo()
    batch_scan(now=clock.now())
    client.force_login(operator)
    delayed = next(b for b in client.get("/monitor/data/").json()["batches"] if b["state"] == "DELAYED")
    assert (delayed["window_status"], delayed["may_fail"]) == ("OPEN", True)

    batch_window_fail(window_id=delayed["window_id"], actor=operator, reason="pay_out will not come today")

    data = client.get("/monitor/data/").json()
    after = next(b for b in data["batches"] if b["config"] == delayed["config"])
    assert (after["window_status"], after["failed_by"], after["fail_reason"], after["may_fail"]) == (
        "FAILED", "operator", "pay_out will not come today", False)
    assert [h["source"] for h in data["held"]] == ["ar_invoices"]


def test_the_counts_stop_at_the_cap_so_a_million_finished_jobs_are_never_read_on_a_refresh(load_spool, now):
    from scheduling.workflows.selectors import monitor_status_counts

    now("2026-03-02T10:00:00Z")
    spool = load_spool(WORKFLOW)
    make_jobs(spool, [S.OK] * 5 + [S.ERROR] * 2)
    counts = monitor_status_counts(cap=3)
    assert (counts["OK"], counts["Error"], counts["Waiting"]) == (4, 2, 0)  # 4: more than 3, shown as "3+"
