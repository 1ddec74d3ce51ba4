"""Reads of scheduler tasks and calendar groups that span relations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from scheduling.job_selectors import job_counts_by_status, jobs_filtered, scheduler_state  # noqa: F401  (workflow jobs, DOMAIN §3)
from scheduling.models import CalendarEntry, CalendarGroup, Job, SchedulerTask, Spool


def group_prefetches(prefix: str = "") -> list:
    """What a group needs to answer business-time questions without a query per group."""
    return [
        Prefetch(
            f"{prefix}entries",
            queryset=CalendarEntry.objects.filter(deleted=False).order_by("date"),
            to_attr="_active_entries",
        ),
        f"{prefix}schedule_entries",
    ]


def calendar_groups_listing() -> QuerySet[CalendarGroup]:
    return CalendarGroup.objects.prefetch_related(*group_prefetches())


def scheduler_tasks_listing() -> QuerySet[SchedulerTask]:
    return SchedulerTask.objects.select_related("suspended_by").prefetch_related("interfaces", "calendar_groups")


def tasks_due(now: dt.datetime) -> list[SchedulerTask]:
    """Tasks a tick at ``now`` must look at, with their calendars, oldest timeout first."""
    return list(
        SchedulerTask.objects.due(now)
        .order_by("next_timeout_at", "id")
        .prefetch_related("interfaces", "calendar_groups", *group_prefetches("calendar_groups__"))
    )


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


def monitor_tasks() -> list[SchedulerTask]:
    return list(SchedulerTask.objects.order_by("name"))


def monitor_spool_names() -> list[str]:
    return list(Spool.objects.order_by("name").values_list("name", flat=True))
