"""Reads of the workflow jobs that several surfaces share (API, CLI monitor, admin)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models

from portal import clock
from portal.lib.times import iso_utc
from portal.models import AuditEntry
from scheduling.workflows.models import Job, JobAttempt, JobStatus, SchedulerControl, Spool


def jobs_with_gates() -> models.QuerySet[Job]:
    """Jobs with what ``JobGates.waiting_for`` reads (the spool and its workflow) in the same query."""
    return Job.objects.select_related("spool__workflow").defer("spool__workflow__text")


def jobs_filtered(
    *, spools: Iterable[str] = (), statuses: Iterable[str] = (), state: int | None = None
) -> models.QuerySet[Job]:
    """Every job, whatever its status, unless a filter hides it; ordered by ID."""
    jobs = jobs_with_gates().order_by("id")
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


# --- what holds a due Waiting job (DOMAIN §5, waiting_for) ------------------------------------

A_FREE_WORKER = "a free worker"


@dataclass(frozen=True)
class JobGates:
    """The gates as they stand now, read once and asked per job by the console, the API and the CLI.

    The dispatcher starts a due Waiting job only when the scheduler runs, its spool is enabled and
    its step's gates (the Step methods the dispatcher asks too) pass; ``waiting_for`` names the
    first that holds it, or None for a job that is not held (not Waiting, not due, or free to go).
    """

    now: dt.datetime
    shut_down: bool
    running: dict[int, list[int]]  # step number -> its Running (or claimed) jobs' ids (parallel counts across spools)

    def waiting_for(self, job: Job) -> str | None:
        if job.status != JobStatus.WAITING or job.timestamp > self.now:
            return None
        if job.claim_token is not None:
            return A_FREE_WORKER  # claimed: every gate passed, a worker has yet to pick it up
        if self.shut_down:
            return "scheduler shut down"
        if not job.spool.enabled:
            return "spool disabled"
        step = job.spool.workflow.workflow.step(job.state) if job.spool.workflow_id else None
        if step is None:
            return None  # the dispatcher puts it in Error, naming the missing step
        local = clock.local(self.now)
        return (
            step.weekday_gate(local)
            or (None if job.ignore_time_window else step.time_window_gate(local))
            or step.parallel_gate(self.running.get(job.state, []))
        )


def job_gates(control: SchedulerControl | None = None) -> JobGates:
    """Two small queries whatever the number of jobs: the scheduler switch (unless the caller read it) and the Running jobs."""
    running: dict[int, list[int]] = defaultdict(list)
    for state, job_id in Job.objects.occupying().order_by("id").values_list("state", "id"):
        running[state].append(job_id)
    return JobGates(now=clock.now(), shut_down=(control or scheduler_state()).shut_down, running=dict(running))


# --- one job in full (the console's detail, `jobs show`) -------------------------------------------


@dataclass(frozen=True)
class JobDetail:
    job: Job
    waiting_for: str | None
    attempts: list[JobAttempt]  # oldest first; the last one's command is the command as run
    audit: list[AuditEntry]  # oldest first: every command an operator gave it, with the reason

    @property
    def command(self) -> list[str]:
        return self.attempts[-1].command if self.attempts else []


def job_detail(job_id: int) -> JobDetail:
    """Raises Job.DoesNotExist for an unknown ID."""
    job = jobs_with_gates().get(id=job_id)
    attempts = list(JobAttempt.objects.filter(job_id=job_id).select_related("workflow_version").defer("workflow_version__text").order_by("id"))
    audit = list(AuditEntry.objects.filter(object_type=Job._meta.label, object_id=str(job_id)).order_by("id"))
    return JobDetail(job=job, waiting_for=job_gates().waiting_for(job), attempts=attempts, audit=audit)


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


# Enough for any real morning; the counts at the top of the console say when there are more.
ATTENTION_LIMIT = 500
# The console counts each status up to this many (a range of the status index, never the whole table).
COUNT_CAP = 10_000


def monitor_status_counts(*, cap: int = COUNT_CAP) -> dict[str, int]:
    """Jobs per status, each counted up to ``cap`` + 1 (the console shows more than ``cap`` as "10000+").

    One small query per status over the (status, id) index: with a million finished jobs the OK
    count stops at the cap instead of reading them all on every refresh.
    """
    return {status: Job.objects.filter(status=status).values("id")[: cap + 1].count() for status in JobStatus.values}


def monitor_attention_jobs(*, limit: int = ATTENTION_LIMIT) -> list[Job]:
    """The jobs that need an eye, newest first, whatever page or filter the job table shows (one query)."""
    return list(jobs_with_gates().needing_attention().order_by("-id")[:limit])


def monitor_spools() -> list[dict]:
    return list(Spool.objects.order_by("name").values("id", "name", "enabled"))


def dispatcher_readiness(now: dt.datetime) -> tuple[bool, dict]:
    """For /healthz (settings.READINESS_CHECKS): the dispatcher's last sign of life and whether it is stale.

    A portal whose dispatcher never ran (no Procfile yet, a test) is not held unready by it.
    """
    control = scheduler_state()
    stale = control.dispatcher_is_stale(now)
    return not stale, {"dispatcher_seen_at": iso_utc(control.dispatcher_seen_at), "dispatcher_stale": stale}
