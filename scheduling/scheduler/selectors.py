"""Reads of scheduler tasks and calendar groups that span relations."""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, Prefetch, QuerySet, Value, When

from scheduling.scheduler.models import CalendarEntry, CalendarGroup, SchedulerTask, TaskState


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


def monitor_tasks() -> list[SchedulerTask]:
    """Every task for the console, those in ERROR or SUSPENDED first (DOMAIN §6), with who suspended them and their calendars."""
    attention = Case(When(state__in=[TaskState.ERROR, TaskState.SUSPENDED], then=Value(0)), default=Value(1))
    return list(
        SchedulerTask.objects.select_related("suspended_by")
        .prefetch_related(Prefetch("calendar_groups", queryset=CalendarGroup.objects.order_by("name").only("id", "name")))
        .order_by(attention, "name")
    )
