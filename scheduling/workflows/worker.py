"""The worker (DOMAIN §3, §5): runs one claimed step, renews its lease and records the outcome.

A step runs in a process group of its own that dies with this worker (``command.run_command``
and ``stepguard``). The lease is renewed by the database's clock; a renewal that cannot reach
the database leaves the step running and is tried again (the lease is lost only when another
process took the job over). A finished step's outcome goes to the local journal first, then to
the database; only when the database cannot take it is it kept in the local journal (fsync'ed)
and written with retries; what a dead worker left in the journal is written by the next.
A worker within its time budget claims what it runs next in the transaction of the outcome.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from portal import clock
from portal.lib.times import iso_utc
from portal.logs import log_scope
from scheduling.workflows.alerts import job_attempt_observed
from scheduling.workflows.command import CommandResult, run_command
from scheduling.workflows.dispatcher import jobs_claim_due, jobs_dispatch, scheduler_is_shut_down, worker_identity
from scheduling.workflows.journal import journal_entries, journal_record, journal_settle
from scheduling.workflows.models import (
    WITHOUT_STEPS,
    Job,
    JobAttempt,
    JobOrigin,
    JobStatus,
    db_now_plus,
)
from scheduling.workflows.services import job_create
from scheduling.workflows.wakeup import jobs_wake
from scheduling.workflows.workflow import Workflow

log = logging.getLogger(__name__)

S = JobStatus
# DOMAIN §5: what a step's environment holds besides the job variables and JOB_ENV_PASSTHROUGH.
STEP_ENV_NAMES = ("PATH", "HOME", "LANG", "TZ")
# Outcome writes back off up to this many seconds between tries: a worker writes soon after the
# database is back, well within JOB_ZOMBIE_CONFIRM_SECONDS.
OUTCOME_BACKOFF_MAX_SECONDS = 2.0
JOB_WITHOUT_STEPS = tuple(f"spool__{name}" for name in WITHOUT_STEPS)
ATTEMPT_WITHOUT_STEPS = tuple(name.replace("workflow__", "workflow_version__") for name in WITHOUT_STEPS)
OUTCOME_FIELDS = ("finished_at", "return_code", "output_tail", "outcome")


# --- the worker ----------------------------------------------------------------------------


def _reconnect() -> None:
    """Drop a connection the database outage broke; the next query opens a new one."""
    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except DatabaseError:
        pass


def _lease_renew(job_id: int, token: str) -> bool | None:
    """Renew the liveness lease: True; False when the job is no longer this worker's; None when the database cannot tell."""
    try:
        return bool(
            Job.objects.filter(id=job_id, claim_token=token, status=S.RUNNING).update(
                lease_until=db_now_plus(settings.JOB_LEASE_SECONDS), lapse_seen_at=None
            )
        )
    except DatabaseError as exc:
        log.warning("job %s: the lease cannot be renewed now (%s); the step goes on, trying again", job_id, exc)
        _reconnect()
        return None


def _command_env(job: Job, attempt: JobAttempt) -> dict[str, str]:
    """PATH, HOME, LANG, TZ, the job variables and JOB_ENV_PASSTHROUGH: nothing else of the portal's environment."""
    names = STEP_ENV_NAMES + tuple(settings.JOB_ENV_PASSTHROUGH)
    env = {name: os.environ[name] for name in names if name in os.environ}
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
    First it writes what a worker of this host left in the outcome journal.
    """
    journal_replay()
    began = time.monotonic()
    done: list[str] = []
    claim: tuple[int, str] | None = (job_id, str(token))
    picked = False  # the task's claim is picked up below; the worker's own next claims are picked as they are made
    while claim is not None:
        job_id, token = claim
        follow = _NextClaim(job_id, began)
        with log_scope(job=job_id):
            if picked:
                summary, written = job_attempt_execute(job_id, token, then=follow)
            else:
                summary, written = _attempt_run(job_id, token, then=follow)
            done.append(summary)
        if not written:
            break  # the database is away: the journal keeps the outcome, the next worker writes it
        # A claim made beside the outcome is picked up already (Running here): it runs, budget or not.
        if follow.claim is None and follow.over_budget():
            jobs_dispatch(first_job_id=job_id, extra=1, limit=1)
            break
        if not follow.asked:
            with transaction.atomic():
                follow.claim = _next_claim_for_worker(job_id)
        claim, picked = follow.claim, True
    # the task's result in django-q2: how much this worker did, and its last few attempts
    return f"{len(done)} attempt(s); " + "; ".join(done[-5:])


@dataclass
class _NextClaim:
    """Called inside the transaction that writes an outcome: the worker's next claim, picked up, commits with it (one commit, not three)."""

    job_id: int
    began: float
    asked: bool = False
    claim: tuple[int, str] | None = None

    def over_budget(self) -> bool:
        return time.monotonic() - self.began >= settings.JOB_WORKER_BUDGET_SECONDS

    def __call__(self, *, own_due: bool = True) -> tuple[int, str] | None:
        """The claim this worker goes on with, None when it stops here."""
        self.asked, self.claim = False, None  # what a try whose commit failed claimed was rolled back with it
        if self.over_budget():
            return None  # the hand-over to the queue comes after the commit
        try:
            with transaction.atomic():  # a savepoint: a claim that fails never takes the outcome with it
                self.claim = _next_claim_for_worker(self.job_id, own_due=own_due)
            self.asked = True
        except Exception:  # noqa: BLE001  - whatever fails here, the outcome is written; the claim is tried again after it
            log.exception("job %s: the next claim failed beside the outcome; tried again after it", self.job_id)
            self.asked, self.claim = False, None
        return self.claim


def _next_claim_for_worker(job_id: int, *, own_due: bool = True) -> tuple[int, str] | None:
    """What this worker runs next, picked up (Running on it) in the caller's transaction; None when nothing is due.

    The job's own next step if ``own_due`` (its outcome left it Waiting, due now), else the
    oldest claim still waiting for a worker (its own task finds it picked up), else the oldest due job.
    """
    if scheduler_is_shut_down():
        return None
    own = jobs_claim_due(limit=1, only_job_id=job_id) if own_due else []
    if own and job_attempt_pick(own[0][0].id, str(own[0][1])):
        return own[0][0].id, str(own[0][1])
    waiting = Job.objects.queued().order_by("timestamp", "id").values_list("id", "claim_token").first()
    if waiting is not None and job_attempt_pick(waiting[0], str(waiting[1])):
        return waiting[0], str(waiting[1])
    other = jobs_claim_due(limit=1)
    if other and job_attempt_pick(other[0][0].id, str(other[0][1])):
        return other[0][0].id, str(other[0][1])
    return None


def job_attempt_pick(job_id: int, token: str) -> bool:
    """Waiting with this claim -> Running on this worker (once, whoever is first): the step starts now.

    In the caller's transaction when there is one (a worker's next claim, made beside an outcome).
    """
    now = clock.now()
    me = worker_identity()
    with transaction.atomic(savepoint=False):
        picked = Job.objects.filter(id=job_id, claim_token=token, status=S.WAITING).update(
            status=S.RUNNING,
            started_at=now,
            finished_at=None,
            return_code=None,  # the previous attempt's stay in the history
            output_tail="",
            worker=me,
            ignore_time_window=False,
            lease_until=db_now_plus(settings.JOB_LEASE_SECONDS),
            lapse_seen_at=None,
            updated_at=now,
        )
        if picked:
            JobAttempt.objects.filter(claim_token=token).update(started_at=now, worker=me)
    return bool(picked)


def _attempt_run(job_id: int, token: str, *, then: Callable[..., tuple[int, str] | None] | None = None) -> tuple[str, bool]:
    """Pick up a claimed attempt, run its command and record the outcome; (summary, outcome written)."""
    if not job_attempt_pick(job_id, token):
        return f"job {job_id}: picked up elsewhere, or the claim is gone (lapsed, paused, Zombie, reset); nothing done", True
    return job_attempt_execute(job_id, token, then=then)


def job_attempt_execute(job_id: int, token: str, *, then: Callable[..., tuple[int, str] | None] | None = None) -> tuple[str, bool]:
    """Run the command of an attempt this worker picked up, then record its outcome (database; journal if it cannot)."""
    attempt = JobAttempt.objects.select_related("job__spool").get(claim_token=token)
    result = run_command(
        attempt.command,
        cwd=str(settings.WORKFLOW_BASE_DIR),
        env=_command_env(attempt.job, attempt),
        time_limit=settings.JOB_TIME_LIMIT_SECONDS,
        tail_chars=settings.JOB_OUTPUT_TAIL_CHARS,
        still_ours=lambda: _lease_renew(job_id, token),
        check_every=max(settings.JOB_LEASE_SECONDS / 3, 0.5),
        kill_grace=settings.STEP_KILL_GRACE_SECONDS,
    )
    entry = {
        "token": str(token),
        "job": job_id,
        "spool": attempt.job.spool.name,
        "generation": attempt.job.generation,
        "state": attempt.state,
        "attempt": attempt.attempt,
        "return_code": result.return_code,
        "output_tail": result.output_tail,
        "timed_out": result.timed_out,
        "abandoned": result.abandoned,
        "finished": iso_utc(clock.now()),
        "worker": worker_identity(),
    }
    description = job_attempt_finish_retrying(job_id=job_id, token=token, result=result, journal=entry, then=then)
    if description is None:
        return f"job {job_id}: return code {result.return_code}, outcome kept in the journal (database away)", False
    return f"job {job_id}: return code {result.return_code}, {description}", True


def _journal_keep(entry: dict) -> None:
    try:
        journal_record(entry)
    except OSError:  # a full or read-only disk: the outcome still goes to the database, only without its safety copy
        log.exception("job %s: the outcome could not be kept in the journal", entry["job"])


def job_attempt_finish_retrying(
    *,
    job_id: int,
    token: str,
    result: CommandResult,
    seconds: float | None = None,
    journal: dict | None = None,
    then: Callable[..., tuple[int, str] | None] | None = None,
) -> str | None:
    """Write the outcome, trying again with backoff while the database is away; None when it never came back.

    ``journal``: the outcome's journal line, kept (fsync'ed) only when the first write fails, before
    any retry: the outcome lives in this process until the database has it, and on disk from the
    moment the database cannot take it (docs/workflows.md). Without it the outcome came from the
    journal (a replay). The journal line goes once the database has the outcome.
    """
    deadline = time.monotonic() + (settings.JOB_OUTCOME_RETRY_SECONDS if seconds is None else seconds)
    pause = 0.25
    journaled = journal is None
    while True:
        try:
            description = job_attempt_finish(job_id=job_id, token=token, result=result, then=then)
        except Exception as exc:
            if not journaled:
                _journal_keep(journal)
                journaled = True
            if not isinstance(exc, DatabaseError):
                raise
            if time.monotonic() >= deadline:
                log.error("job %s: the outcome could not be written (%s); the journal keeps it", job_id, exc)
                return None
            log.warning("job %s: the outcome cannot be written now (%s); trying again in %.2g s", job_id, exc, pause)
            _reconnect()
            time.sleep(pause)
            pause = min(pause * 2, OUTCOME_BACKOFF_MAX_SECONDS)
            continue
        if not journaled:
            return description
        try:
            journal_settle(token)
        except OSError:  # the line stays; a replay finds the outcome written and drops it then
            log.exception("job %s: the journal line of a written outcome could not be removed", job_id)
        return description


def journal_replay() -> int:
    """Write the outcomes a worker of this host left in the journal; how many were written now.

    Run by every worker task before its own, and by the `worker` process at start. An outcome
    the database has already (its attempt has a return code) only leaves the journal.
    """
    try:
        entries = journal_entries()
    except OSError:
        log.exception("the step outcome journal cannot be read")
        return 0
    try:
        return _replay(entries)
    except DatabaseError as exc:
        log.warning("the step outcome journal is replayed later: %s", exc)
        _reconnect()
        return 0


def _replay(entries: list[dict]) -> int:
    written = 0
    for entry in entries:
        result = CommandResult(
            int(entry["return_code"]), str(entry.get("output_tail", "")), bool(entry.get("timed_out")), bool(entry.get("abandoned"))
        )
        with log_scope(job=entry.get("job")):
            if not JobAttempt.objects.filter(claim_token=entry["token"]).exists():
                journal_settle(entry["token"])  # pruned or never ours: nothing to write
                continue
            description = job_attempt_finish_retrying(job_id=int(entry["job"]), token=entry["token"], result=result, seconds=0)
        if description is None:
            break  # the database is away: later
        log.warning("job %s: outcome of attempt %s written from the journal: %s", entry["job"], entry.get("attempt"), description)
        written += 1
    return written


def job_attempt_finish(*, job_id: int, token: str, result: CommandResult, then: Callable[..., tuple[int, str] | None] | None = None) -> str:
    """Apply an attempt's return code to its job (DOMAIN §3), with the stop flag and `new`.

    ``then`` runs inside the same transaction once the outcome is applied (the worker's next claim).
    """
    with transaction.atomic():
        # The versions' steps are read only when this process has not parsed them yet (WorkflowVersion.workflow).
        job = Job.objects.select_for_update(of=("self",)).select_related("spool__workflow").defer(*JOB_WITHOUT_STEPS).get(id=job_id)
        attempt = JobAttempt.objects.select_related("workflow_version").defer(*ATTEMPT_WITHOUT_STEPS).get(claim_token=token)
        if attempt.return_code is not None:
            return attempt.outcome  # written already (a retry after a lost answer, a journal replay)
        now = clock.now()
        attempt.finished_at = now
        attempt.return_code = result.return_code
        attempt.output_tail = result.output_tail
        ours = job.status == S.RUNNING and str(job.claim_token) == str(token)
        # A Zombie declared while the outcome could not be written (the database was away, the worker
        # died after its step ended): the step did finish, so its outcome still applies.
        late = (
            job.status == S.ZOMBIE
            and attempt.status_after == S.ZOMBIE
            and not JobAttempt.objects.filter(job_id=job_id, id__gt=attempt.id).exists()
        )
        if not (ours or late):
            attempt.outcome = f"not applied: the job was {job.status} by then"
            attempt.save(update_fields=OUTCOME_FIELDS)
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
        if late:
            description += "; written late (the job had been found Zombie)"
        fields |= {
            "finished_at": now,
            "return_code": result.return_code,
            "output_tail": result.output_tail,
            "claim_token": None,
            "lease_until": None,
            "lapse_seen_at": None,
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
        attempt.save(update_fields=(*OUTCOME_FIELDS, "status_after"))
        own_due = outcome_status == S.WAITING and fields.get("timestamp", now) <= now
        going_on = then(own_due=own_due) if then is not None else None
        # The dispatcher looks at commit when this worker leaves work behind: a next step due now
        # that it does not take, a place of a parallel limit freed, a new generation. A worker that
        # goes on takes the next due work itself; waking the dispatcher for it only makes a claim
        # that waits for a worker, and a task that finds it picked up.
        if going_on is None or new_step is not None or (step is not None and step.parallel is not None):
            jobs_wake()
    return description


