"""Retention of the workflow jobs (DOMAIN §9): the attempts of finished generations."""

from __future__ import annotations

import datetime as dt

from portal.lib.bulk import rows_delete
from scheduling.workflows.models import JobAttempt, JobStatus


def job_attempts_prune(*, before: dt.datetime, batch_size: int) -> dict[str, int]:
    """Attempts of jobs that reached OK before ``before``; a job that may still run (Waiting, Error,
    Zombie, ...) keeps its whole history: a loop's pacing and an operator's reset read it."""
    old = JobAttempt.objects.filter(job__status=JobStatus.OK, job__finished_at__lt=before)
    return {"job attempts": rows_delete(old, batch_size=batch_size)[JobAttempt._meta.label]}
