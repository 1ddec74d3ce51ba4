"""django-q2 tasks of the workflow jobs: thin wrappers over services."""

from __future__ import annotations

from scheduling.workflows.dispatcher import generations_finalize
from scheduling.workflows.worker import job_run


def run_job(job_id: int, token: str) -> str:
    """One attempt of a job's step, claimed by a dispatcher (the task the workers run)."""
    return job_run(job_id=job_id, token=token)


def finalize_generations() -> int:
    """finalizeAfterDays: kept for `workflow-finalize` rows queued by an earlier version (the heartbeat checks it now)."""
    return generations_finalize()
