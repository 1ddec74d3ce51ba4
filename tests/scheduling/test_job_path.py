"""The job path near the floor (issue 16): claims that read no workflow steps, one commit per step, wake-ups by NOTIFY."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduling.workflows import worker
from scheduling.workflows.dispatcher import jobs_claim_due, jobs_dispatch
from scheduling.workflows.models import JobStatus
from scheduling.workflows.wakeup import CHANNEL, jobs_wait

S = JobStatus
NOW = "2026-03-02T10:00:00Z"
LONG = "".join(f"[{n}]\ncommand=true\nnext={n + 1 if n < 2000 else ''}\n" for n in range(1, 2001))


@pytest.mark.django_db
def test_a_claim_with_a_long_workflow_reads_none_of_its_steps(load_spool, waiting_job, now):
    now(NOW)
    spool = load_spool(LONG, name="long")
    first, second = waiting_job(spool, 1), waiting_job(spool, 1)
    assert [job.id for job, _, _ in jobs_claim_due(limit=1)] == [first.id]  # parses the version once per process
    with CaptureQueriesContext(connection) as queries:
        assert [job.id for job, _, _ in jobs_claim_due(limit=1)] == [second.id]
    assert not [q["sql"] for q in queries.captured_queries if '"steps"' in q["sql"] or '"text"' in q["sql"]]


@pytest.mark.django_db
def test_a_worker_claims_its_next_step_in_the_outcome_s_commit_and_keeps_no_journal_line(load_spool, waiting_job, now, held, monkeypatch):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=2\n[2]\ncommand=true\n"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    order = []
    real_claim, real_finish = worker._next_claim_for_worker, worker.job_attempt_finish

    def claim(job_id, **kwargs):
        order.append("next claim")
        return real_claim(job_id, **kwargs)

    def finish(**kwargs):
        description = real_finish(**kwargs)
        order.append("outcome committed")
        return description

    monkeypatch.setattr(worker, "_next_claim_for_worker", claim)
    monkeypatch.setattr(worker, "job_attempt_finish", finish)
    summary = worker.job_run(job_id=job_id, token=token)
    assert summary.startswith("2 attempt(s)")
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.OK)
    # each next claim is made inside the transaction that writes the outcome, before it commits
    assert order == ["next claim", "outcome committed"] * 2
    assert not Path(settings.STEP_JOURNAL_FILE).exists()  # the journal is for outcomes the database could not take


def test_a_next_step_picked_beside_the_outcome_runs_even_when_the_budget_ends_at_that_commit(load_spool, waiting_job, now, held, monkeypatch):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=2\n[2]\ncommand=true\n"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    looks = []

    def over_budget(self):
        looks.append(1)
        return len(looks) > 1  # within the budget when step 2 is claimed and picked up, over it right after

    monkeypatch.setattr(worker._NextClaim, "over_budget", over_budget)
    worker.job_run(job_id=job_id, token=token)
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.OK)  # never left Running with no worker to run it


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_dispatcher_s_wait_ends_at_a_notify_and_polls_without_one():
    import psycopg2

    db = connection.settings_dict
    other = psycopg2.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"])
    other.autocommit = True
    assert jobs_wait(0.05) is False  # no notification: the poll interval passes
    timer = threading.Timer(0.3, lambda: other.cursor().execute(f"NOTIFY {CHANNEL}"))
    timer.start()
    try:
        assert jobs_wait(30) is True
    finally:
        timer.cancel()
        other.close()


@pytest.mark.django_db
def test_a_next_claim_that_fails_beside_the_outcome_leaves_the_outcome_written(load_spool, waiting_job, now, held, monkeypatch):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=2\n[2]\ncommand=true\n"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    real, calls = worker.jobs_claim_due, []

    def fails_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a claim that breaks")
        return real(**kwargs)

    monkeypatch.setattr(worker, "jobs_claim_due", fails_once)
    worker.job_run(job_id=job_id, token=token)
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.OK)  # step 1's outcome stood, and its next step was claimed after it
