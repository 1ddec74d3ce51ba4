"""The workflow jobs' alerts to people (DOMAIN §7) and their figures for /metrics.

Every place that writes a job's status calls ``job_status_follow`` (one line each):
a job entering Error or Zombie opens its episode, leaving it resolves.
"""

from __future__ import annotations

import datetime as dt

from portal.alerts.models import AlertKind
from portal.alerts.services import alert_open, alert_resolve
from portal.alerts.tallies import step_observe
from portal.alerts.watch import alerts_watch_heartbeat
from scheduling.workflows.models import Job, JobAttempt, JobStatus, SchedulerControl
from scheduling.workflows.workflow import RETRY_RETURN_CODE

ALERTING = {JobStatus.ERROR: AlertKind.JOB_ERROR, JobStatus.ZOMBIE: AlertKind.JOB_ZOMBIE}


def job_status_follow(*, job: Job, before: str, after: str, why: str = "") -> None:
    if before == after:
        return
    subject = f"job:{job.id}"
    if before in ALERTING:
        alert_resolve(kind=ALERTING[before], subject=subject)
    if after in ALERTING:
        spool = job.spool.name
        summary = f"job {job.id} {spool}/{job.generation:06d} step {job.state} ({job.type or 'no text'}) is {after}"
        alert_open(kind=ALERTING[after], subject=subject, summary=summary + (f": {why}" if why else ""), spool=spool)


def job_attempt_observed(*, job: Job, attempt: JobAttempt, status: str, return_code: int, timed_out: bool, now: dt.datetime) -> None:
    """A finished attempt (the worker): its duration and failure in the spool's tallies, and the job's alert."""
    seconds = (now - attempt.started_at).total_seconds() if attempt.started_at else None
    step_observe(spool=job.spool.name, seconds=seconds, failed=timed_out or return_code not in (0, RETRY_RETURN_CODE))
    why = "time limit" if timed_out else f"return code {return_code}"
    job_status_follow(job=job, before=job.status, after=status, why=why)


def dispatcher_sign_of_life(*, now: dt.datetime) -> None:
    """The dispatcher's sweep: the clock watches this row (DISPATCHER_STALE), and it watches the clock (HEARTBEAT_STALE)."""
    SchedulerControl.load()
    SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID).update(dispatcher_seen_at=now)
    alerts_watch_heartbeat(now=now)
