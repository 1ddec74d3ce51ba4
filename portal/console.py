"""The operator console at /monitor/ (DOMAIN §6): one page, the JSON it refreshes from, and a job's detail.

What needs an eye comes first in the feed, whatever page or filter the job table
shows. Commands on the page go through the REST API, so the web, the API, the CLI
and the admin share the same services, preconditions, permissions and audit. The
feed's queries do not grow with the number of jobs (tests/portal/test_console.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from monitoring.batches.selectors import alerting_batches, held_arrivals_listing
from monitoring.summaries.currencies import format_amount
from monitoring.summaries.selectors import summary_chart_series
from portal import clock, roles
from portal.alerts.selectors import open_alerts
from portal.lib.times import iso_utc
from portal.selectors import outbox_problems, portal_health
from scheduling.cutoffs.forecast import TASK_RUN, forecast_day
from scheduling.cutoffs.selectors import CutOffState, cutoff_states, cutoffs_listing
from scheduling.scheduler.models import COMMAND_FROM as TASK_COMMANDS
from scheduling.scheduler.models import SchedulerTask
from scheduling.scheduler.selectors import monitor_tasks
from scheduling.workflows.models import JOB_COMMANDS, Job, JobStatus
from scheduling.workflows.selectors import (
    ATTENTION_LIMIT,
    COUNT_CAP,
    JobGates,
    job_detail,
    job_gates,
    monitor_attention_jobs,
    monitor_jobs_page,
    monitor_spools,
    monitor_status_counts,
    scheduler_state,
)

log = logging.getLogger(__name__)

LOGIN_URL = "/monitor/login/"


class MonitorLoginView(auth_views.LoginView):
    template_name = "monitor/login.html"
    redirect_authenticated_user = True
    next_page = "/monitor/"


class MonitorLogoutView(auth_views.LogoutView):
    next_page = LOGIN_URL


def role_label(user) -> str:
    for role in (roles.ADMINISTRATOR, roles.OPERATOR, roles.VIEWER, roles.FEEDER):
        if role in roles.user_roles(user):
            return role
    return "no role"


@login_required(login_url=LOGIN_URL)
def monitor(request: HttpRequest) -> HttpResponse:
    if not roles.can_read(request.user):
        return render(request, "monitor/forbidden.html", {"role_label": role_label(request.user)}, status=403)
    context = {
        "can_operate": roles.can_operate(request.user),
        "can_administer": roles.can_administer(request.user),
        "role_label": role_label(request.user),
        "time_zone": settings.PORTAL_TIME_ZONE,
        "statuses": JobStatus.values,
    }
    return render(request, "monitor/index.html", context)


def optional_int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _refused(request: HttpRequest) -> JsonResponse | None:
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "log in first"}, status=401)
    if not roles.can_read(request.user):
        return JsonResponse({"detail": "the Viewer, Operator or Administrator role is needed"}, status=403)
    return None


@require_GET
def monitor_data(request: HttpRequest) -> JsonResponse:
    """The console's refresh: one snapshot per role and filters, shared by every tab (see ``snapshot``)."""
    role = _reader_role(request)
    if isinstance(role, JsonResponse):
        return role
    status = request.GET.get("status", "")
    filters = {
        "spool": request.GET.get("spool", ""),
        "status": status if status in JobStatus.values else "",
        "before": optional_int(request.GET.get("before")),
        "after": optional_int(request.GET.get("after")),
    }
    key = f"console:{role}:{sorted(filters.items())}"
    return JsonResponse(snapshot(key, lambda: monitor_payload(**filters)))


def _reader_role(request: HttpRequest) -> str | JsonResponse:
    """The reader's role, checked (session, user, groups) at most once per snapshot period for a browser.

    The tabs of one browser share its session: they refresh on that check instead
    of three queries each. A logout or a role taken away counts within the period.
    """
    seconds = settings.CONSOLE_SNAPSHOT_SECONDS
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    name = "console-reader:" + hashlib.sha256(cookie.encode()).hexdigest()
    try:
        role = cache.get(name) if seconds and cookie else None
    except Exception:  # the cache away: checked in the database, as without a snapshot
        log.exception("console: the snapshot cache failed; checking the reader without it")
        role, seconds = None, 0
    if role is not None:
        return role
    if refused := _refused(request):
        return refused
    role = role_label(request.user)
    if seconds and cookie:
        cache.set(name, role, timeout=seconds)
    return role


def snapshot(key: str, build: Callable[[], dict]) -> dict:
    """``build()`` at most once per CONSOLE_SNAPSHOT_SECONDS for ``key``, in the shared cache (Redis with REDIS_URL).

    Every tab refreshes each second: they read the same snapshot, so fifty tabs cost
    the database what one does. The cache ends the snapshot; the first request after
    that takes the rebuild, and the others are answered the previous one meanwhile.
    """
    seconds = settings.CONSOLE_SNAPSHOT_SECONDS
    if not seconds:
        return build()
    name = "console-snapshot:" + hashlib.sha256(key.encode()).hexdigest()
    try:
        fresh = cache.get(name)
        if fresh is not None:
            return fresh
        if not cache.add(f"{name}:building", 1, timeout=10):
            previous = cache.get(f"{name}:previous")
            if previous is not None:
                return previous
        payload = build()
        cache.set_many({name: payload}, timeout=seconds)
        cache.set(f"{name}:previous", payload, timeout=60)
        cache.delete(f"{name}:building")
        return payload
    except Exception:  # the cache away: the console still answers, from the database
        log.exception("console: the snapshot cache failed; answering without it")
        return build()


def monitor_payload(*, spool: str, status: str, before: int | None, after: int | None) -> dict:
    """Everything the console's refresh shows: attention first, then the job table's page (DOMAIN §6)."""
    page = monitor_jobs_page(spool=spool, status=status, before=before, after=after)
    health = portal_health()
    control = scheduler_state()
    gates = job_gates(control)
    attention = monitor_attention_jobs()
    return {
        "now": iso_utc(clock.now()),
        "time_zone": settings.PORTAL_TIME_ZONE,
        "heartbeat": {"last_tick_at": iso_utc(health.last_heartbeat_at), "stale": health.heartbeat_stale},
        "scheduler": {
            "shutdown": control.shut_down,
            "changed_at": iso_utc(control.changed_at),
            "changed_by": control.changed_by,
            "reason": control.reason,
        },
        "counts": monitor_status_counts(),
        "counts_cap": COUNT_CAP,
        "attention": {"rows": [job_row(job, gates) for job in attention], "limit": ATTENTION_LIMIT},
        "jobs": {
            "rows": [job_row(job, gates) for job in page.rows],
            "older": page.older,
            "newer": page.newer,
            "spools": monitor_spools(),
        },
        "batches": alerting_batches(),
        "held": held_arrivals_listing(),
        "tasks": [task_row(task) for task in monitor_tasks()],
        "outbox": {
            "pending": health.outbox_pending,
            "pending_capped": health.outbox_pending_capped,
            "oldest_pending_age_seconds": health.outbox_oldest_pending_age_seconds,
            **outbox_problems(),
        },
        "charts": summary_chart_series(),
        "alerts": open_alerts(),
        "cutoffs": cutoff_rows(),
        "timeline": timeline_rows(),
    }


def cutoff_rows() -> list[dict]:
    """The cut-offs ahead, those at risk first, then the nearest (the console counts down from ``next_at``)."""
    states = [state for state in cutoff_states(cutoffs_listing(), now=clock.now()) if state.next_at is not None]
    states.sort(key=lambda s: (not s.at_risk, s.next_at, s.cutoff.name))
    return [cutoff_row(state) for state in states]


def cutoff_row(state: CutOffState) -> dict:
    cutoff = state.cutoff
    return {
        "id": cutoff.id,
        "name": cutoff.name,
        "interface": cutoff.interface.code,
        "next_at": iso_utc(state.next_at),
        "seconds_left": state.seconds_left,
        "warn_minutes": cutoff.warn_minutes,
        "at_risk": bool(state.at_risk),
        "pending": [
            {"currency": currency, "count": count, "value": format_amount(value, currency)}
            for currency, (count, value) in state.pending.items()
        ],
    }


def timeline_rows() -> list[dict]:
    """Today's forecast (DOMAIN §8) from now on; each scheduler task by its next run and how many more today."""
    now = clock.now()
    rows, runs = [], {}
    for entry in forecast_day(day=clock.local(now).date()):
        if entry.at < now:
            continue
        if entry.kind == TASK_RUN:
            if entry.subject in runs:
                runs[entry.subject]["more"] += 1
                continue
            runs[entry.subject] = row = {"at": iso_utc(entry.at), "kind": entry.kind, "subject": entry.subject, "detail": entry.detail, "more": 0}
        else:
            row = {"at": iso_utc(entry.at), "kind": entry.kind, "subject": entry.subject, "detail": entry.detail, "more": 0}
        rows.append(row)
    return rows


@require_GET
def monitor_job(request: HttpRequest, job_id: int) -> JsonResponse:
    """A job in full for the console's detail: the same selector as `manage.py jobs show`."""
    if refused := _refused(request):
        return refused
    try:
        detail = job_detail(job_id)
    except Job.DoesNotExist:
        return JsonResponse({"detail": f"there is no job {job_id}"}, status=404)
    job = detail.job
    return JsonResponse(
        {
            **job_row(job, None),
            "waiting_for": detail.waiting_for,
            "command": detail.command,
            "return_code": job.return_code,
            "output_tail": job.output_tail,
            "started": iso_utc(job.started_at),
            "finished": iso_utc(job.finished_at),
            "worker": job.worker,
            "schedule_note": job.schedule_note(),
            "attempts": [
                {
                    "id": a.id, "state": a.state, "attempt": a.attempt, "type": a.type, "command": a.command,
                    "claimed": iso_utc(a.claimed_at), "started": iso_utc(a.started_at), "finished": iso_utc(a.finished_at),
                    "return_code": a.return_code, "worker": a.worker, "outcome": a.outcome, "output_tail": a.output_tail,
                }
                for a in detail.attempts
            ],
            "audit": [
                {"id": e.id, "at": iso_utc(e.at), "actor": e.actor_name, "action": e.action, "reason": e.reason, "before": e.before, "after": e.after}
                for e in detail.audit
            ],
        }
    )


def job_row(job: Job, gates: JobGates | None) -> dict:
    return {
        "id": job.id,
        "spool": job.spool.name,
        "generation": job.generation,
        "state": job.state,
        "attempt": job.attempt,
        "type": job.type,
        "status": job.status,
        "timestamp": iso_utc(job.timestamp),
        "comment": job.comment,
        "stop_flag": job.stop_flag,
        "waiting_for": gates.waiting_for(job) if gates else None,
        "commands": [command for command in JOB_COMMANDS if job.allows(command)],
    }


def task_row(task: SchedulerTask) -> dict:
    return {
        "id": task.id,
        "name": task.name,
        "subtype": task.subtype,
        "state": task.state,
        "next_timeout_at": iso_utc(task.next_timeout_at),
        "last_fired_at": iso_utc(task.last_fired_at),
        "last_error": task.last_error,
        "last_error_at": iso_utc(task.last_error_at),
        "consecutive_failures": task.consecutive_failures,
        "suspended_reason": task.suspended_reason,
        "suspended_by": task.suspended_by.get_username() if task.suspended_by else "",
        "suspended_at": iso_utc(task.suspended_at),
        "resume_at": iso_utc(task.resume_at),
        "calendars": [group.name for group in task.calendar_groups.all()],
        "interval_seconds": task.interval_seconds,
        "commands": [command for command in TASK_COMMANDS if task.may(command)],
    }
