"""Prometheus figures of the workflow jobs, read from the database at each scrape.

Counters that must never go down (step failures, the step-duration histogram) come
from tallies counted when each attempt ends, not from the attempt rows, which
retention prunes (DOMAIN §9).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Max
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from portal.alerts.tallies import step_duration_histograms, tallies
from scheduling.workflows.models import Job, JobStatus, Spool
from scheduling.workflows.selectors import scheduler_state


def workflow_steps_by_spool() -> dict[str, set[int]]:
    rows = Spool.objects.exclude(workflow=None).values_list("name", "workflow__steps")
    return {name: {step["number"] for step in steps} for name, steps in rows}


def workflow_metrics() -> Iterator[Metric]:
    spools = sorted(Spool.objects.values_list("name", flat=True))
    counts = {(spool, status): n for spool, status, n in Job.objects.values_list("spool__name", "status").annotate(n=Count("id")).order_by()}
    jobs = GaugeMetricFamily("portal_jobs", "Workflow jobs by spool and status.", labels=["spool", "status"])
    # No spool yet: one zero series per status (no spool), so the metric is there from the first scrape.
    for spool in spools or [""]:
        for status in JobStatus.values:
            jobs.add_metric([spool, status], counts.get((spool, status), 0))
    yield jobs

    running = GaugeMetricFamily("portal_jobs_running", "Running workflow jobs by spool and step (state).", labels=["spool", "step"])
    by_step = {
        (spool, step): n
        for spool, step, n in Job.objects.filter(status=JobStatus.RUNNING).values_list("spool__name", "state").annotate(n=Count("id")).order_by()
    }
    # Every step of the workflows in force, at 0 when idle: a step's series exists before its first run.
    pairs = {(spool, step) for spool, steps in workflow_steps_by_spool().items() for step in steps} | set(by_step)
    for spool, step in sorted(pairs):
        running.add_metric([spool, str(step)], by_step.get((spool, step), 0))
    if not running.samples:
        # No workflow loaded yet: one zero series (no spool, no step), so the metric is there from the first scrape.
        running.add_metric(["", ""], 0)
    yield running

    durations = HistogramMetricFamily("portal_job_step_duration_seconds", "Durations of finished step attempts, by spool.", labels=["spool"])
    for spool, (buckets, total) in sorted(step_duration_histograms().items()):
        durations.add_metric([spool], buckets, total)
    yield durations

    failures = CounterMetricFamily(
        "portal_job_step_failures", "Step attempts that failed (a return code other than 0 and 9, or the time limit), by spool.", labels=["spool"]
    )
    failed = tallies("step_failures")
    for spool in sorted(set(spools) | set(failed)):
        failures.add_metric([spool], failed.get(spool, 0))
    yield failures

    last_ok = GaugeMetricFamily("portal_spool_last_ok_timestamp_seconds", "Unix time a job of the spool last reached OK (0: never).", labels=["spool"])
    finished = dict(Job.objects.filter(status=JobStatus.OK).values_list("spool__name").annotate(at=Max("finished_at")).order_by())
    for spool in spools:
        at = finished.get(spool)
        last_ok.add_metric([spool], at.timestamp() if at else 0)
    yield last_ok

    control = scheduler_state()
    seen = GaugeMetricFamily("portal_dispatcher_last_seen_timestamp_seconds", "Unix time of the dispatcher's last sign of life (0: never).")
    seen.add_metric([], control.dispatcher_seen_at.timestamp() if control.dispatcher_seen_at else 0)
    yield seen
    shut = GaugeMetricFamily("portal_scheduler_shut_down", "1 while an Administrator has shut the scheduler down (no job is dispatched).")
    shut.add_metric([], 1 if control.shut_down else 0)
    yield shut
