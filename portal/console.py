"""The live web monitor at /monitor/: one page, and the JSON it refreshes from every second.

Commands on the page go through the REST API, so the web, the API, the CLI and
the admin share the same services, preconditions, permissions and audit.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from monitoring.batches.selectors import alerting_batches
from monitoring.summaries.selectors import summary_chart_series
from portal import clock, roles
from portal.lib.times import iso_utc
from portal.selectors import outbox_problems, portal_health
from scheduling.scheduler.models import SchedulerTask
from scheduling.scheduler.selectors import monitor_tasks
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.selectors import monitor_jobs_page, monitor_spool_names, scheduler_state

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


@require_GET
def monitor_data(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "log in first"}, status=401)
    if not roles.can_read(request.user):
        return JsonResponse({"detail": "the Viewer, Operator or Administrator role is needed"}, status=403)
    status = request.GET.get("status", "")
    page = monitor_jobs_page(
        spool=request.GET.get("spool", ""),
        status=status if status in JobStatus.values else "",
        before=optional_int(request.GET.get("before")),
        after=optional_int(request.GET.get("after")),
    )
    health = portal_health()
    return JsonResponse(
        {
            "now": iso_utc(clock.now()),
            "heartbeat": {"last_tick_at": iso_utc(health.last_heartbeat_at), "stale": health.heartbeat_stale},
            "scheduler": {"shutdown": scheduler_state().shut_down},
            "jobs": {
                "rows": [job_row(job) for job in page.rows],
                "older": page.older,
                "newer": page.newer,
                "spools": monitor_spool_names(),
            },
            "batches": alerting_batches(),
            "tasks": [task_row(task) for task in monitor_tasks()],
            "outbox": {
                "pending": health.outbox_pending,
                "oldest_pending_age_seconds": health.outbox_oldest_pending_age_seconds,
                **outbox_problems(),
            },
            "charts": summary_chart_series(),
        }
    )


def job_row(job: Job) -> dict:
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
    }


def task_row(task: SchedulerTask) -> dict:
    return {
        "id": task.id,
        "name": task.name,
        "subtype": task.subtype,
        "state": task.state,
        "next_timeout_at": iso_utc(task.next_timeout_at),
        "last_error": task.last_error,
    }
