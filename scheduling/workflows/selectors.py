"""Reads of the workflow jobs that several surfaces share (API, CLI monitor, admin)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models

from scheduling.workflows.models import Job, JobStatus, SchedulerControl, Spool


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


# --- the live monitor -------------------------------------------------------------------

MONITOR_PAGE_SIZE = 50


@dataclass(frozen=True)
class JobPage:
    """One page of jobs, newest first, with keyset cursors (no COUNT over the table)."""

    rows: list[Job]
    older: int | None  # pass as ``before`` for the next page
    newer: int | None  # pass as ``after`` for the previous page


def monitor_jobs_page(
    *, spool: str = "", status: str = "", before: int | None = None, after: int | None = None, size: int = MONITOR_PAGE_SIZE
) -> JobPage:
    jobs = jobs_filtered(spools=[spool] if spool else (), statuses=[status] if status else ())
    if after is not None:
        rows = list(jobs.filter(id__gt=after).order_by("id")[: size + 1])
        has_newer, rows = len(rows) > size, rows[:size][::-1]
        has_older = bool(rows) and jobs.filter(id__lt=rows[-1].id).exists()
    else:
        page = jobs.filter(id__lt=before) if before is not None else jobs
        rows = list(page.order_by("-id")[: size + 1])
        has_older, rows = len(rows) > size, rows[:size]
        has_newer = before is not None and bool(rows) and jobs.filter(id__gt=rows[0].id).exists()
    return JobPage(
        rows=rows,
        older=rows[-1].id if rows and has_older else None,
        newer=rows[0].id if rows and has_newer else None,
    )


def monitor_spool_names() -> list[str]:
    return list(Spool.objects.order_by("name").values_list("name", flat=True))
