"""GET /api/v1/forecast/ (DOMAIN §8): a chosen day's window ends, SLAs, cut-offs, task runs and due jobs, in order."""

from __future__ import annotations

import datetime as dt

import pytest

from monitoring.batches.services import arrivals_record, batch_config_create
from portal import clock
from scheduling.scheduler.calendars import calendar_group_create
from scheduling.scheduler.services import scheduler_task_create
from scheduling.workflows.services import job_add, job_schedule, job_start, scheduler_shutdown, workflow_load

pytestmark = pytest.mark.django_db

ADMIN = "cli:test"


@pytest.fixture
def day_ahead(settings, now, make_cutoff, tmp_path):
    """Monday 2026-03-02 in Berlin (CET): [2026-03-01 23:00 UTC, 2026-03-02 23:00 UTC), seen at 07:00 local."""
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    now("2026-03-02T06:00:00Z")
    batch_config_create(
        actor="test", sources=["ap_lines", "ap_headers"],
        fields={"tenant": "acme", "name": "AP_HALF_DAY", "window_hours": 12, "max_wait_hours": 2, "target_app": "payables",
                "target_workflow": "post_ap", "exception_check": True, "active": True, "realert_minutes": None},
    )
    arrivals_record(items=[{"tenant": "acme", "source": "ap_lines", "extract_timestamp": "2026-03-01T23:30:00Z"}])
    make_cutoff()
    hours = calendar_group_create(
        actor="test", name="BERLIN-OFFICE", timezone="Europe/Berlin", weekend_days=[6, 7],
        schedule_entries=[{"type_code": "DAY", "open_time": dt.time(9), "close_time": dt.time(17)}],
    )
    scheduler_task_create(actor="test", name="office-summary", subtype="BATCH_MONITOR", interval_seconds=4 * 3600, calendar_groups=[hours])
    path = tmp_path / "billing.ini"
    path.write_text("[1]\ncommand=true\ntext=Initialize\n")
    spool = workflow_load(spool_name="billing", path=str(path), actor=ADMIN).spool
    job = job_start(job=job_add(spool=spool, state=1, actor=ADMIN), actor=ADMIN, named=False)
    job_schedule(job=job, timestamp=clock.parse_instant("2026-03-02T12:00:00Z"), actor=ADMIN)
    late = job_start(job=job_add(spool=spool, state=1, actor=ADMIN), actor=ADMIN, named=False)
    job_schedule(job=late, timestamp=clock.parse_instant("2026-03-02T05:30:00Z"), actor=ADMIN)
    scheduler_shutdown(actor=ADMIN, reason="month-end freeze")
    return job, late


def test_the_forecast_of_a_chosen_day_lists_exactly_the_expected_entries_in_order(day_ahead, viewer, api_client_for):
    answer = api_client_for(viewer).get("/api/v1/forecast/", {"date": "2026-03-02"})

    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["date"] == "2026-03-02" and body["time_zone"] == "Europe/Berlin"
    job, late = day_ahead
    assert [(e["at"], e["at_local"], e["kind"], e["subject"]) for e in body["entries"]] == [
        ("2026-03-02T05:30:00Z", "2026-03-02T06:30:00+01:00", "JOB_DUE", f"job {late.id} (billing)"),
        ("2026-03-02T10:00:00Z", "2026-03-02T11:00:00+01:00", "TASK_RUN", "office-summary"),
        ("2026-03-02T11:30:00Z", "2026-03-02T12:30:00+01:00", "WINDOW_END", "AP_HALF_DAY (acme)"),
        ("2026-03-02T12:00:00Z", "2026-03-02T13:00:00+01:00", "JOB_DUE", f"job {job.id} (billing)"),
        ("2026-03-02T13:30:00Z", "2026-03-02T14:30:00+01:00", "SLA", "AP_HALF_DAY (acme)"),
        ("2026-03-02T14:00:00Z", "2026-03-02T15:00:00+01:00", "TASK_RUN", "office-summary"),
        ("2026-03-02T16:00:00Z", "2026-03-02T17:00:00+01:00", "CUTOFF", "TARGET2 customer"),
    ]
    assert body["entries"][-1]["detail"] == "PAYMENT_ORIGINATOR (all currencies) by 17:00 Europe/Berlin (TARGET2 business day)"
    # The job that should have started says why it has not; the one still to come does not.
    assert body["entries"][0]["detail"] == "generation 000002 step 1 (Initialize): not started, waiting for scheduler shut down"
    assert body["entries"][3]["detail"] == "generation 000001 step 1 (Initialize)"


def test_without_a_date_it_is_today_in_the_portals_time_zone(day_ahead, viewer, api_client_for, now):
    now("2026-03-02T23:30:00Z")  # already Tuesday in Berlin
    body = api_client_for(viewer).get("/api/v1/forecast/").json()
    assert body["date"] == "2026-03-03"


def test_a_saturday_has_no_cut_off_and_no_office_task_run(day_ahead, viewer, api_client_for):
    body = api_client_for(viewer).get("/api/v1/forecast/", {"date": "2026-03-07"}).json()
    assert {e["kind"] for e in body["entries"]} <= {"WINDOW_END", "SLA"}


@pytest.mark.parametrize("date", ["2026-02-30", "02.03.2026", "9999-12-31", "0001-01-01"])
def test_a_bad_date_is_refused_naming_it(viewer, api_client_for, date):
    answer = api_client_for(viewer).get("/api/v1/forecast/", {"date": date})
    assert answer.status_code == 400 and "date" in answer.json()


def test_a_day_a_year_ahead_still_lists_each_task_run_of_that_day(day_ahead, viewer, api_client_for):
    body = api_client_for(viewer).get("/api/v1/forecast/", {"date": "2027-03-02"}).json()  # a Tuesday
    runs = [e["at_local"][11:16] for e in body["entries"] if e["kind"] == "TASK_RUN"]
    assert runs == ["09:00", "13:00"]  # the day opens at 09:00 Berlin time, then every 4 hours until 17:00
