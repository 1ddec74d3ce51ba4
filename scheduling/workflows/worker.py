"""The worker (DOMAIN §3, §5): runs one claimed step, renews its lease and records the outcome."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time

from django.conf import settings
from django.db import transaction

from portal import clock
from portal.logs import log_scope
from scheduling.workflows.alerts import job_attempt_observed
from scheduling.workflows.command import CommandResult, run_command
from scheduling.workflows.dispatcher import jobs_claim_due, jobs_dispatch, scheduler_is_shut_down, worker_identity
from scheduling.workflows.models import (
    Job,
    JobAttempt,
    JobOrigin,
    JobStatus,
)
from scheduling.workflows.services import job_create
from scheduling.workflows.workflow import Workflow

log = logging.getLogger(__name__)

S = JobStatus


# --- the worker ----------------------------------------------------------------------------


def _lease_renew(job_id: int, token: str) -> bool:
    """Renew the liveness lease; False when the job is no longer this worker's."""
    until = clock.now() + dt.timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return bool(Job.objects.filter(id=job_id, claim_token=token, status=S.RUNNING).update(lease_until=until))


def _command_env(job: Job, attempt: JobAttempt) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PORTAL_JOB_ID=str(job.id),
        PORTAL_SPOOL=job.spool.name,
        PORTAL_GENERATION=f"{job.generation:06d}",
        PORTAL_STATE=str(attempt.state),
        PORTAL_ATTEMPT=str(attempt.attempt),
    )
    return env


def job_run(*, job_id: int, token: str) -> str:
    """The django-q2 task: run a claimed attempt, then keep this worker busy with what is due.

    When a step ends, its worker goes on at once: with the job's next step if it
    is due and its gates pass, else with the oldest claim still waiting for a
    worker, else with the oldest due job (each claimed as the dispatcher claims).
    It does so for JOB_WORKER_BUDGET_SECONDS, then hands the next step to the
    queue and returns, so no task outlives its time limit and the pool turns over.
    """
    began = time.monotonic()
    done: list[str] = []
    claim: tuple[int, str] | None = (job_id, str(token))
    while claim is not None:
        job_id, token = claim
        with log_scope(job=job_id):
            done.append(_attempt_run(job_id, token))
        if time.monotonic() - began >= settings.JOB_WORKER_BUDGET_SECONDS:
            jobs_dispatch(first_job_id=job_id, extra=1, limit=1)
            break
        claim = _next_claim_for_worker(job_id)
    # the task's result in django-q2: how much this worker did, and its last few attempts
    return f"{len(done)} attempt(s); " + "; ".join(done[-5:])


def _next_claim_for_worker(job_id: int) -> tuple[int, str] | None:
    if scheduler_is_shut_down():
        return None
    if Job.objects.due(clock.now()).filter(id=job_id).exists():  # one cheap look before the gates
        own = jobs_claim_due(limit=1, only_job_id=job_id)
        if own:
            return own[0][0].id, str(own[0][1])
    waiting = Job.objects.queued().order_by("timestamp", "id").values_list("id", "claim_token").first()
    if waiting is not None:
        return waiting[0], str(waiting[1])  # the pick in _attempt_run decides between this worker and the task's own
    other = jobs_claim_due(limit=1)
    return (other[0][0].id, str(other[0][1])) if other else None


def _attempt_run(job_id: int, token: str) -> str:
    """Pick up a claimed attempt (once, whoever is first), run its command and record the outcome."""
    now = clock.now()
    me = worker_identity()
    picked = Job.objects.filter(id=job_id, claim_token=token, status=S.RUNNING, started_at__isnull=True).update(
        started_at=now, worker=me, lease_until=now + dt.timedelta(seconds=settings.JOB_LEASE_SECONDS), updated_at=now
    )
    if not picked:
        return f"job {job_id}: picked up elsewhere, or the claim is gone (Zombie, reset); nothing done"
    JobAttempt.objects.filter(claim_token=token).update(started_at=now, worker=me)
    attempt = JobAttempt.objects.select_related("job__spool").get(claim_token=token)
    result = run_command(
        attempt.command,
        cwd=str(settings.WORKFLOW_BASE_DIR),
        env=_command_env(attempt.job, attempt),
        time_limit=settings.JOB_TIME_LIMIT_SECONDS,
        tail_chars=settings.JOB_OUTPUT_TAIL_CHARS,
        still_ours=lambda: _lease_renew(job_id, token),
        check_every=max(settings.JOB_LEASE_SECONDS / 3, 0.5),
    )
    description = job_attempt_finish(job_id=job_id, token=token, result=result)
    return f"job {job_id}: return code {result.return_code}, {description}"


def job_attempt_finish(*, job_id: int, token: str, result: CommandResult) -> str:
    """Apply an attempt's return code to its job (DOMAIN §3), with the stop flag and `new`."""
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("spool__workflow").get(id=job_id)
        attempt = JobAttempt.objects.select_related("workflow_version").get(claim_token=token)
        now = clock.now()
        attempt.finished_at = now
        attempt.return_code = result.return_code
        attempt.output_tail = result.output_tail
        if job.status != S.RUNNING or str(job.claim_token) != str(token):
            attempt.outcome = f"not applied: the job was {job.status} by then"
            attempt.save()
            return attempt.outcome
        workflow: Workflow = (attempt.workflow_version or job.spool.workflow).workflow
        step = workflow.step(attempt.state)
        if step is None:
            outcome_status, description = S.ERROR, f"Error: step {attempt.state} is not in the workflow"
            fields = {"status": S.ERROR}
            new_step = None
        else:
            outcome = job.outcome(step=step, workflow=workflow, return_code=result.return_code, now=now)
            outcome_status, description, new_step = outcome.status, outcome.description, outcome.new_generation_step
            fields = {
                "status": outcome.status,
                "state": outcome.state,
                "attempt": outcome.attempt,
                "timestamp": outcome.timestamp,
                "type": outcome.type,
            }
        if job.stop_flag and outcome_status == S.WAITING:
            fields["status"] = outcome_status = S.PAUSE
            description += "; paused (stop flag)"
        if result.timed_out:
            description = f"time limit: {description}"
        fields |= {
            "finished_at": now,
            "return_code": result.return_code,
            "output_tail": result.output_tail,
            "claim_token": None,
            "lease_until": None,
            "stop_flag": False,
            "updated_at": now,
        }
        Job.objects.filter(id=job_id).update(**fields)
        job_attempt_observed(job=job, attempt=attempt, status=outcome_status, return_code=result.return_code, timed_out=result.timed_out, now=now)
        if new_step is not None:
            created = job_create(
                spool=job.spool, step=workflow.step(new_step), status=S.WAITING, timestamp=now, origin=JobOrigin.NEW
            )
            description += f"; new generation {created.generation:06d} at step {new_step}"
        attempt.outcome = description[:200]
        attempt.status_after = outcome_status
        attempt.save()
    return description


