"""`waiting_for` (DOMAIN §5): a due Waiting job that has not started names the gate that holds it,
the same in the API, the CLI and the console; the dispatcher holds it for that very reason."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from portal.services import audit_record
from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.selectors import job_gates
from scheduling.workflows.services import scheduler_shutdown, spool_set_enabled
from scheduling.workflows.workflow import weekdays_text
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db

S = JobStatus
MONDAY_NOON = "2026-03-02T12:00:00Z"


def waiting_for_everywhere(job: Job, api_client_for, viewer, client) -> set[str | None]:
    """What the API, `jobs show`, `monitor --json` and the console's feed say holds ``job``."""
    api = api_client_for(viewer).get(f"/api/v1/jobs/{job.id}/").json()["waiting_for"]
    listed = {row["id"]: row["waiting_for"] for row in api_client_for(viewer).get("/api/v1/jobs/").json()["results"]}[job.id]
    out = io.StringIO()
    call_command("jobs", "show", str(job.id), stdout=out)
    shown = next(line for line in out.getvalue().splitlines() if "waiting for" in line).split("waiting for", 1)[1].strip()
    out = io.StringIO()
    call_command("monitor", "--json", stdout=out)
    cli = {row["id"]: row["waiting_for"] for row in json.loads(out.getvalue())}[job.id]
    client.force_login(viewer)
    feed = client.get("/monitor/data/").json()
    console = {row["id"]: row["waiting_for"] for row in feed["jobs"]["rows"]}[job.id]
    return {api, listed, None if shown == "-" else shown, cli, console}


@pytest.mark.parametrize(
    ("step", "instant", "gate"),
    [
        ("weekdays=mon-fri", "2026-03-07T12:00:00Z", "weekdays mon-fri"),  # a Saturday
        ("weekdays=mon,wed,fri", "2026-03-03T12:00:00Z", "weekdays mon,wed,fri"),  # a Tuesday
        ("mintime=06:00\nmaxtime=22:00", "2026-03-02T05:59:00Z", "mintime 06:00"),
        ("mintime=06:00\nmaxtime=22:00", "2026-03-02T22:01:00Z", "maxtime 22:00"),
        ("mintime=22:00\nmaxtime=04:00", "2026-03-02T12:00:00Z", "mintime 22:00"),  # a window over midnight
        ("maxtime=22:00", "2026-03-02T23:00:00Z", "maxtime 22:00"),
    ],
)
def test_a_closed_step_gate_is_named_and_holds_the_job(load_spool, waiting_job, now, step, instant, gate, api_client_for, viewer, client):
    now(instant)
    job = waiting_job(load_spool(f"[1]\ncommand=true\n{step}\n"), 1)

    assert jobs_dispatch() == 0
    assert waiting_for_everywhere(job, api_client_for, viewer, client) == {gate}


def test_the_time_of_day_is_read_in_the_portal_time_zone(load_spool, waiting_job, now, settings):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    now("2026-03-02T05:30:00Z")  # 06:30 in Berlin, 05:30 in UTC
    job = waiting_job(load_spool("[1]\ncommand=true\nmintime=06:00\n"), 1)
    assert job_gates().waiting_for(job) is None
    assert jobs_dispatch() == 1


def test_the_parallel_limit_names_the_running_jobs(load_spool, waiting_job, now, held, api_client_for, viewer, client):
    now(MONDAY_NOON)
    spool = load_spool("[1]\ncommand=true\nparallel=2\n")
    first, second, third = (waiting_job(spool, 1) for _ in range(3))
    assert jobs_dispatch() == 2  # the first two are Running (held by the test's broker)

    assert waiting_for_everywhere(third, api_client_for, viewer, client) == {f"parallel 2: jobs {first.id}, {second.id} running"}
    held.run_all()  # a worker that ends a step goes on with what is due: the third job too
    assert job_gates().waiting_for(Job.objects.get(id=third.id)) is None
    assert Job.objects.get(id=third.id).status == S.OK


def test_a_shut_down_scheduler_and_a_disabled_spool_are_named(load_spool, waiting_job, now, api_client_for, viewer, client):
    now(MONDAY_NOON)
    spool = load_spool("[1]\ncommand=true\nweekdays=sat\n")
    job = waiting_job(spool, 1)
    spool_set_enabled(spool=spool, enabled=False, actor=TEST_ACTOR)
    assert waiting_for_everywhere(job, api_client_for, viewer, client) == {"spool disabled"}

    scheduler_shutdown(actor=TEST_ACTOR)  # the first gate the dispatcher reads
    assert waiting_for_everywhere(job, api_client_for, viewer, client) == {"scheduler shut down"}
    assert jobs_dispatch() == 0


def test_a_claimed_job_no_worker_has_taken_waits_for_a_free_worker(load_spool, waiting_job, now):
    """The steps issue keeps such a job Waiting with its claim; the claim is what tells it apart."""
    import uuid

    now(MONDAY_NOON)
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    Job.objects.filter(id=job.id).update(claim_token=uuid.uuid4())
    assert job_gates().waiting_for(Job.objects.get(id=job.id)) == "a free worker"


def test_nothing_holds_a_job_that_is_free_to_start_not_due_or_not_waiting(load_spool, waiting_job, now, api_client_for, viewer):
    start = now(MONDAY_NOON)
    spool = load_spool("[1]\ncommand=true\nweekdays=sat\n")
    free = waiting_job(load_spool("[1]\ncommand=true\n", name="other"), 1)
    later = waiting_job(spool, 1)
    Job.objects.filter(id=later.id).update(timestamp=start.replace(day=9))
    paused = waiting_job(spool, 1)
    Job.objects.filter(id=paused.id).update(status=S.PAUSE)
    audit_record(actor=TEST_ACTOR, action="test")

    rows = api_client_for(viewer).get("/api/v1/jobs/").json()["results"]
    assert [row["waiting_for"] for row in rows] == [None, None, None]
    assert jobs_dispatch() == 1 and Job.objects.get(id=free.id).status == S.OK


def test_a_named_start_passes_the_time_window_so_nothing_names_it(load_spool, waiting_job, now):
    from scheduling.workflows.services import job_start

    now("2026-03-02T05:00:00Z")
    job = waiting_job(load_spool("[1]\ncommand=true\nmintime=08:00\n"), 1)
    assert job_gates().waiting_for(job) == "mintime 08:00"
    job = job_start(job=job, actor=TEST_ACTOR, named=True)
    assert job_gates().waiting_for(Job.objects.get(id=job.id)) is None


@pytest.mark.parametrize(
    ("days", "text"),
    [((1, 2, 3, 4, 5), "mon-fri"), ((1, 3, 5), "mon,wed,fri"), ((6, 7), "sat,sun"), ((1, 2, 3, 5, 6, 7), "mon-wed,fri-sun"), ((4,), "thu")],
)
def test_weekdays_are_named_as_a_file_would_write_them(days, text):
    assert weekdays_text(days) == text


def test_the_jobs_list_reads_the_gates_once_whatever_the_number_of_jobs(load_spool, waiting_job, now, api_client_for, viewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now("2026-03-07T12:00:00Z")
    spool = load_spool("[1]\ncommand=true\nweekdays=mon-fri\n")
    client = api_client_for(viewer)
    counts = []
    for n in (2, 20):
        while Job.objects.count() < n:
            waiting_job(spool, 1)
        with CaptureQueriesContext(connection) as queries:
            rows = client.get("/api/v1/jobs/").json()["results"]
        assert {row["waiting_for"] for row in rows} == {"weekdays mon-fri"}
        counts.append(len(queries))
    assert counts[0] == counts[1]
