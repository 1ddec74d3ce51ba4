"""Demo data of the workflow jobs (`make run` only): the demo spool moving on its own, and a payroll
spool with what needs an operator: a job that fails, a Zombie, a paused job with a comment."""

from __future__ import annotations

import datetime as dt

from portal import clock
from scheduling.workflows.dispatcher import jobs_claim_due, jobs_mark_zombies
from scheduling.workflows.models import Job, JobAttempt, Spool, db_now_plus
from scheduling.workflows.services import job_add, job_comment, job_start, workflow_load
from scheduling.workflows.worker import job_attempt_pick

DEMO_SPOOL = "demo"
DEMO_WORKFLOW = "workflows/demo.ini"
PAYROLL_SPOOL = "payroll"
PAYROLL_WORKFLOW = "workflows/payroll.ini"
DEMO_ACTOR = "demo"


def load_demo() -> str:
    """Once: the demo spool and generation 1 at Initialize, due now, so jobs move on their own."""
    if Spool.objects.filter(name=DEMO_SPOOL).exists():
        return f"spool {DEMO_SPOOL} exists; nothing loaded"
    report = workflow_load(spool_name=DEMO_SPOOL, path=DEMO_WORKFLOW, actor=DEMO_ACTOR, reason="demo data")
    job = job_add(spool=report.spool, state=10, actor=DEMO_ACTOR, reason="demo data")
    job_start(job=job, actor=DEMO_ACTOR, named=False, reason="demo data")
    return f"spool {DEMO_SPOOL} with {DEMO_WORKFLOW} and job {job.id} (generation {job.generation:06d}) at step 10"


def load_payroll_demo() -> str:
    """Once: generation 1's import, due now, fails on a bad file (Error within seconds of the dispatcher
    starting); generation 2's transfer lost its worker (Zombie); generation 3 waits paused, commented."""
    if Spool.objects.filter(name=PAYROLL_SPOOL).exists():
        return f"spool {PAYROLL_SPOOL} exists; nothing loaded"
    spool = workflow_load(spool_name=PAYROLL_SPOOL, path=PAYROLL_WORKFLOW, actor=DEMO_ACTOR, reason="demo data").spool
    failing = job_start(job=job_add(spool=spool, state=1, actor=DEMO_ACTOR, reason="demo data"), actor=DEMO_ACTOR, named=False)
    lost = job_start(job=job_add(spool=spool, state=2, actor=DEMO_ACTOR, reason="demo data"), actor=DEMO_ACTOR, named=False)
    _lose_its_worker(lost)
    paused = job_add(spool=spool, state=1, actor=DEMO_ACTOR, reason="demo data")
    job_comment(job=paused, comment="held until the bank confirms the new IBAN list", actor=DEMO_ACTOR)
    return f"spool {PAYROLL_SPOOL}: job {failing.id} fails at Import, job {lost.id} is a Zombie, job {paused.id} waits paused"


def _lose_its_worker(job: Job) -> None:
    """As a host that died mid-step leaves it: claimed, started by a worker that renews its lease no more."""
    [(_, token, _)] = jobs_claim_due(limit=1, only_job_id=job.id)
    job_attempt_pick(job.id, str(token))
    now = clock.now()
    # Its lease lapsed five minutes ago by the database's clock, and a sweep has seen it lapsed since.
    Job.objects.filter(id=job.id).update(
        started_at=now - dt.timedelta(minutes=7), worker="batch-host-2:4711", lease_until=db_now_plus(-300), lapse_seen_at=db_now_plus(-300)
    )
    JobAttempt.objects.filter(claim_token=token).update(started_at=now - dt.timedelta(minutes=7), worker="batch-host-2:4711")
    jobs_mark_zombies()
