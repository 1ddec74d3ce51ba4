"""Today's forecast (DOMAIN §8): what the day holds, in time order, across the engines.

Window ends and SLAs (the latest OPEN window and the windows after it, at the config's
rhythm), cut-offs, scheduler task runs inside business time (from each task's next
timeout, moved past closed time as the heartbeat moves it) and Waiting jobs falling due;
a due job that has not started says what holds it. "The day" is a date in PORTAL_TIME_ZONE.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from monitoring.batches.messages import short_utc
from monitoring.batches.models import BatchConfig, BatchWindow, WindowStatus
from portal import clock
from scheduling.cutoffs.selectors import cutoffs_listing
from scheduling.scheduler.business_time import calendars_next_open, calendars_open, wall_instant
from scheduling.scheduler.models import SchedulerTask, TaskState
from scheduling.scheduler.selectors import group_prefetches
from scheduling.workflows.models import JobStatus
from scheduling.workflows.selectors import job_gates, jobs_with_gates

WINDOW_END, SLA, CUTOFF, TASK_RUN, JOB_DUE = "WINDOW_END", "SLA", "CUTOFF", "TASK_RUN", "JOB_DUE"
KINDS = (WINDOW_END, SLA, CUTOFF, TASK_RUN, JOB_DUE)
# A task's runs are stepped through from its next timeout: a bound against a tiny interval far ahead.
MAX_TASK_STEPS = 200_000
SKIP_UNTIL = dt.timedelta(days=2)
# The days a forecast can be asked for: further out, an instant of the day would not fit a datetime.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2200, 12, 31)


@dataclass(frozen=True)
class ForecastEntry:
    at: dt.datetime
    kind: str
    subject: str
    detail: str


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[the day's first instant, the next day's) on the wall clock of PORTAL_TIME_ZONE."""
    zone = clock.zone()
    return wall_instant(day, dt.time(0), zone), wall_instant(day + dt.timedelta(days=1), dt.time(0), zone)


def forecast_day(*, day: dt.date) -> list[ForecastEntry]:
    start, end = day_bounds(day)
    entries = [*_windows(start, end), *_cutoffs(start, end), *_task_runs(start, end), *_jobs_due(start, end)]
    return sorted(entries, key=lambda e: (e.at, KINDS.index(e.kind), e.subject))


def _window_entries(config: BatchConfig, window_start: dt.datetime, window_end: dt.datetime, max_wait_hours: int, start, end):
    label = f"window {short_utc(window_start)} to {short_utc(window_end)} UTC"
    subject = f"{config.name} ({config.tenant})"
    sla = BatchWindow.sla_after(window_end, max_wait_hours)
    if start <= window_end < end:
        yield ForecastEntry(window_end, WINDOW_END, subject, f"{label} ends")
    if config.exception_check and start <= sla < end:
        yield ForecastEntry(sla, SLA, subject, f"SLA of {label} ({max_wait_hours} h after its end)")


def _windows(start: dt.datetime, end: dt.datetime):
    configs = BatchConfig.objects.filter(active=True, latest_window__isnull=False).select_related("latest_window")
    for config in configs.order_by("tenant", "name"):
        latest = config.latest_window
        if latest.status == WindowStatus.OPEN:
            yield from _window_entries(config, latest.window_start, latest.window_end, latest.max_wait_hours, start, end)
        # The windows after the latest, at its rhythm: from the first whose SLA can fall in the day.
        length = config.window_length
        lead = dt.timedelta(hours=config.max_wait_hours)
        first = max(1, math.floor((start - lead - latest.window_end) / length))
        k = first
        while latest.window_end + (k - 1) * length < end:
            window_start = latest.window_end + (k - 1) * length
            yield from _window_entries(config, window_start, window_start + length, config.max_wait_hours, start, end)
            k += 1


def _cutoffs(start: dt.datetime, end: dt.datetime):
    for cutoff in cutoffs_listing():
        group = cutoff.calendar_group
        scope = ", ".join(cutoff.currencies) or "all currencies"
        for _, at in cutoff.occurrences(start, end, group.calendar()):
            yield ForecastEntry(
                at, CUTOFF, cutoff.name,
                f"{cutoff.interface.code} ({scope}) by {cutoff.time:%H:%M} {group.timezone} ({group.name} business day)",
            )


def _task_runs(start: dt.datetime, end: dt.datetime):
    tasks = SchedulerTask.objects.filter(
        enabled=True, state__in=[TaskState.ACTIVE, TaskState.PROCESSING, TaskState.ERROR], next_timeout_at__lt=end
    ).prefetch_related("calendar_groups", *group_prefetches("calendar_groups__"))
    for task in tasks.order_by("name"):
        calendars = [group.calendar() for group in task.calendar_groups.all()]
        where = ", ".join(group.name for group in task.calendar_groups.all()) or "always open"
        detail = f"{task.subtype} every {task.interval_seconds} s ({where})"
        at, interval = task.next_timeout_at, dt.timedelta(seconds=task.interval_seconds)
        # A day far ahead: whole intervals skipped up to two days before it (business time re-sets the
        # rhythm at each opening, so the runs of the day itself are stepped through from there).
        gap = start - at - SKIP_UNTIL
        if gap > interval:
            at += (gap // interval) * interval
        for _ in range(MAX_TASK_STEPS):
            if at is None or at >= end:
                break
            if not calendars_open(calendars, at):
                at = calendars_next_open(calendars, at)
                continue
            if at >= start:
                yield ForecastEntry(at, TASK_RUN, task.name, detail)
            at += interval


def _jobs_due(start: dt.datetime, end: dt.datetime):
    gates = job_gates()
    jobs = jobs_with_gates().filter(status=JobStatus.WAITING, timestamp__gte=start, timestamp__lt=end)
    for job in jobs.order_by("timestamp", "id"):
        held = gates.waiting_for(job)
        detail = f"generation {job.generation:06d} step {job.state} ({job.type or 'no text'})"
        yield ForecastEntry(
            job.timestamp, JOB_DUE, f"job {job.id} ({job.spool.name})", f"{detail}: not started, waiting for {held}" if held else detail
        )
