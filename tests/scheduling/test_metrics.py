"""The scheduling and transaction figures on /metrics, read from the database at scrape time."""

from __future__ import annotations

import pytest

from monitoring.summaries.services import transactions_feed
from scheduling.scheduler.services import scheduler_task_create
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import job_add
from tests.portal.test_metrics import sample
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db


def test_job_task_and_transaction_figures_are_read_at_scrape_time(client, load_spool, now):
    now("2026-03-02T10:00:00Z")
    spool = load_spool("[10]\ntext=Initialize\ncommand=true\n")
    running = job_add(spool=spool, state=10, actor=TEST_ACTOR)
    job_add(spool=spool, state=10, actor=TEST_ACTOR)
    Job.objects.filter(id=running.id).update(status=JobStatus.RUNNING)
    scheduler_task_create(actor="test", name="scan", subtype="BATCH_MONITOR", interval_seconds=60)
    transactions_feed(
        items=[
            {"interface": "PAYMENTS_GATEWAY", "reference": r, "amount": a, "currency": "EUR", "status": "PENDING",
             "received_at": "2026-03-02T09:00:00Z", "completed_at": None}
            for r, a in (("A", "10.50"), ("B", "4.25"))
        ]
    )

    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()

    assert sample(text, 'portal_jobs{spool="billing",status="Running"}') == 1
    assert sample(text, 'portal_jobs{spool="billing",status="Pause"}') == 1
    assert sample(text, 'portal_jobs{spool="billing",status="Zombie"}') == 0
    assert sample(text, 'portal_jobs_running{spool="billing",step="10"}') == 1
    assert sample(text, 'portal_scheduler_tasks{state="ACTIVE"}') == 1
    assert sample(text, 'portal_transactions{interface="PAYMENTS_GATEWAY",status="PENDING"}') == 2
    assert sample(text, 'portal_transactions_value{currency="EUR",interface="PAYMENTS_GATEWAY",status="PENDING"}') == 14.75
