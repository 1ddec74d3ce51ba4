"""Prometheus figures of the scheduler tasks, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from scheduling.scheduler.models import SchedulerTask, TaskState


def scheduler_metrics() -> Iterator[Metric]:
    tasks = GaugeMetricFamily("portal_scheduler_tasks", "Scheduler tasks by state.", labels=["state"])
    counts = dict(SchedulerTask.objects.values_list("state").annotate(n=Count("id")).order_by())
    for state in TaskState.values:
        tasks.add_metric([state], counts.get(state, 0))
    yield tasks
