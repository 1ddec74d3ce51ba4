"""Demo data of the workflow jobs (`make run` only): a spool on workflows/demo.ini and its first job."""

from __future__ import annotations

from scheduling.workflows.models import Spool
from scheduling.workflows.services import job_add, job_start, workflow_load

DEMO_SPOOL = "demo"
DEMO_WORKFLOW = "workflows/demo.ini"
DEMO_ACTOR = "demo"


def load_demo() -> str:
    """Once: the demo spool and generation 1 at Initialize, due now, so jobs move on their own."""
    if Spool.objects.filter(name=DEMO_SPOOL).exists():
        return f"spool {DEMO_SPOOL} exists; nothing loaded"
    report = workflow_load(spool_name=DEMO_SPOOL, path=DEMO_WORKFLOW, actor=DEMO_ACTOR, reason="demo data")
    job = job_add(spool=report.spool, state=10, actor=DEMO_ACTOR, reason="demo data")
    job_start(job=job, actor=DEMO_ACTOR, named=False, reason="demo data")
    return f"spool {DEMO_SPOOL} with {DEMO_WORKFLOW} and job {job.id} (generation {job.generation:06d}) at step 10"
