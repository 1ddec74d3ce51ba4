"""The console's refresh is served from one snapshot per second shared by every tab: fifty tabs cost what one does."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from scheduling.workflows.models import Job
from scheduling.workflows.services import job_add, job_start, workflow_load

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshots(settings):
    settings.CONSOLE_SNAPSHOT_SECONDS = 60  # a period no slow test run outlasts: the cache ending it is cache.clear()
    cache.clear()
    yield
    cache.clear()


def tab(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def job_queries(captured: CaptureQueriesContext) -> int:
    return sum('"scheduling_job"' in query["sql"] for query in captured.captured_queries)


def test_fifty_tabs_read_the_jobs_table_as_often_as_one(snapshots, viewer, operator):
    tabs = [tab(viewer) for _ in range(50)]  # fifty browsers, each with a session of its own
    with CaptureQueriesContext(connection) as one:
        first = tabs[0].get("/monitor/data/").json()
    with CaptureQueriesContext(connection) as fifty:
        answers = [t.get("/monitor/data/").json() for t in tabs]

    assert job_queries(one) > 0
    assert job_queries(fifty) == 0  # all fifty served from the snapshot the first tab built
    assert all(answer == first for answer in answers)


def test_the_tabs_of_one_browser_cost_no_query_within_the_second(snapshots, viewer):
    browser = tab(viewer)
    tabs = [Client() for _ in range(50)]
    for other in tabs:
        other.cookies = browser.cookies  # tabs share their browser's session
    first = browser.get("/monitor/data/").json()
    with CaptureQueriesContext(connection) as fifty:
        answers = [t.get("/monitor/data/").json() for t in tabs]
    assert len(fifty) == 0
    assert all(answer == first for answer in answers)


def test_a_reader_without_a_session_is_refused_whatever_the_snapshot(snapshots, viewer):
    tab(viewer).get("/monitor/data/")
    assert Client().get("/monitor/data/").status_code == 401


def test_each_role_and_filter_set_has_its_own_snapshot(snapshots, viewer, operator):
    with CaptureQueriesContext(connection) as captured:
        tab(viewer).get("/monitor/data/")
        tab(operator).get("/monitor/data/")
        tab(viewer).get("/monitor/data/", {"status": "Error"})
        tab(viewer).get("/monitor/data/", {"status": "Error"})
    builds = job_queries(captured)
    with CaptureQueriesContext(connection) as one:
        cache.clear()
        tab(viewer).get("/monitor/data/")
    assert builds == 3 * job_queries(one)


def test_an_ended_snapshot_is_built_again_with_what_changed(snapshots, viewer, tmp_path):
    reader = tab(viewer)
    assert reader.get("/monitor/data/").json()["counts"].get("Waiting", 0) == 0
    workflow = tmp_path / "billing.ini"
    workflow.write_text("[10]\ncommand=true\ntext=Initialize\nnext=\n")
    spool = workflow_load(spool_name="billing", path=str(workflow), actor="cli:test").spool
    job_start(job=job_add(spool=spool, state=10, actor="cli:test"), actor="cli:test", named=False)
    assert reader.get("/monitor/data/").json()["counts"].get("Waiting", 0) == 0  # within the second: the snapshot
    cache.clear()  # as the cache does once the second is over
    assert reader.get("/monitor/data/").json()["counts"]["Waiting"] == Job.objects.filter(status="Waiting").count() == 1


def test_the_console_still_answers_when_the_cache_is_away(snapshots, viewer, monkeypatch):
    def away(*args, **kwargs):
        raise ConnectionError("redis: connection refused")

    monkeypatch.setattr(cache, "get", away)
    answer = tab(viewer).get("/monitor/data/")
    assert answer.status_code == 200 and "counts" in answer.json()
