"""Reads of the workflow jobs that several surfaces share (API, CLI monitor, admin)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models

from scheduling.job_models import Job, JobStatus, SchedulerControl


def jobs_filtered(
    *, spools: Iterable[str] = (), statuses: Iterable[str] = (), state: int | None = None
) -> models.QuerySet[Job]:
    """Every job, whatever its status, unless a filter hides it; ordered by ID."""
    jobs = Job.objects.select_related("spool").order_by("id")
    spools, statuses = list(spools), list(statuses)
    if spools:
        jobs = jobs.filter(spool__name__in=spools)
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    if state is not None:
        jobs = jobs.filter(state=state)
    return jobs


def job_counts_by_status(jobs: models.QuerySet[Job]) -> dict[str, int]:
    counts = dict(jobs.order_by().values_list("status").annotate(n=models.Count("id")))
    return {status: counts.get(status, 0) for status in JobStatus.values}


def scheduler_state() -> SchedulerControl:
    return SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID).first() or SchedulerControl(id=SchedulerControl.SINGLETON_ID)
