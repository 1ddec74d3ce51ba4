"""Prometheus figures of the workflow jobs, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from scheduling.workflows.models import Job, JobStatus, Spool
from scheduling.workflows.selectors import job_counts_by_status


def workflow_step_numbers() -> set[int]:
    steps = Spool.objects.exclude(workflow=None).values_list("workflow__steps", flat=True)
    return {step["number"] for workflow in steps for step in workflow}


def workflow_metrics() -> Iterator[Metric]:
    jobs = GaugeMetricFamily("portal_jobs", "Workflow jobs by status.", labels=["status"])
    for status, count in job_counts_by_status(Job.objects.all()).items():
        jobs.add_metric([status], count)
    yield jobs

    running = GaugeMetricFamily("portal_jobs_running", "Running workflow jobs by step (state).", labels=["step"])
    by_step = dict(Job.objects.filter(status=JobStatus.RUNNING).values_list("state").annotate(n=Count("id")).order_by())
    # Every step of the workflows in force, at 0 when idle: a step's series exists before its first run.
    for step in sorted(set(workflow_step_numbers()) | set(by_step)):
        running.add_metric([str(step)], by_step.get(step, 0))
    yield running
