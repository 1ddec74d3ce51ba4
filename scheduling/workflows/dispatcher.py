"""The dispatcher (DOMAIN §3): due Waiting jobs claimed once each and handed to a worker; zombies and finalize."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models.functions import Now

from portal import clock
from portal.alerts.services import alert_rules_read_once
from portal.lib.times import iso_utc
from scheduling.workflows.alerts import dispatcher_sign_of_life, job_status_follow
from scheduling.workflows.models import (
    CLAIM_LAPSED,
    WITHOUT_STEPS,
    Job,
    JobAttempt,
    JobOrigin,
    JobStatus,
    SchedulerControl,
    Spool,
    db_now_plus,
)
from scheduling.workflows.services import job_create
from scheduling.workflows.wakeup import jobs_wake
from scheduling.workflows.workflow import Step

log = logging.getLogger(__name__)

S = JobStatus
# The path django-q2 stores for the task that runs a step (scheduling.job_tasks serves rows queued before the split).
RUN_TASK = "scheduling.workflows.tasks.run_job"


# --- zombies and finalize ----------------------------------------------------------------------


def jobs_mark_zombies() -> int:
    """Running jobs whose worker is gone become Zombie (at dispatcher start-up, every sweep, E_HeartbeatStart).

    A lapsed lease is the only proof (DOMAIN §5): a worker renews its lease by the
    database's clock while its step runs, and its step dies with it (a parent-death
    signal, the group killed), so a lapsed lease means no process of the step is left.
    A host and PID are never looked at: workers run on other hosts, in containers and
    PID namespaces. A lease found lapsed is a Zombie only when it is still lapsed
    JOB_ZOMBIE_CONFIRM_SECONDS after a sweep first saw it: after a database outage every
    live worker renews within seconds, before any of its jobs is declared lost.
    """
    now = clock.now()
    lapsed = Job.objects.running().filter(CLAIM_LAPSED)
    lapsed.filter(lapse_seen_at__isnull=True).update(lapse_seen_at=Now())
    confirmed = lapsed.filter(lapse_seen_at__lte=db_now_plus(-settings.JOB_ZOMBIE_CONFIRM_SECONDS))
    jobs = confirmed.select_related("spool").only("id", "claim_token", "lease_until", "worker", "generation", "state", "type", "spool__name")
    with alert_rules_read_once():
        return sum(_job_zombie_declare(job, now) for job in jobs)


def _job_zombie_declare(job: Job, now: dt.datetime) -> bool:
    """The confirmed lapse of one job's lease: Zombie, its attempt ended, its alert (when it is still as the sweep saw it)."""
    why = f"no live worker: the lease of {job.worker or 'its worker'} ended at {iso_utc(job.lease_until)}"
    with transaction.atomic():
        declared = (
            Job.objects.filter(CLAIM_LAPSED, id=job.id, status=S.RUNNING, claim_token=job.claim_token)
            .filter(lapse_seen_at__lte=db_now_plus(-settings.JOB_ZOMBIE_CONFIRM_SECONDS))
            .update(status=S.ZOMBIE, claim_token=None, lease_until=None, lapse_seen_at=None, updated_at=now)
        )
        if not declared:
            return False
        JobAttempt.objects.filter(claim_token=job.claim_token).update(finished_at=now, outcome=f"Zombie: {why}"[:200], status_after=S.ZOMBIE)
        job_status_follow(job=job, before=S.RUNNING, after=S.ZOMBIE, why=why)
    log.warning("job %s is Zombie: %s", job.id, why)
    return True


def dispatcher_sweep() -> int:
    """The dispatcher's periodic housekeeping: zombies, and a sign of life for the monitor."""
    dispatcher_sign_of_life(now=clock.now())
    return jobs_mark_zombies()


def generations_finalize() -> int:
    """Once per generation: a job at finalizeNext when it reached OK at least finalizeAfterDays ago."""
    now = clock.now()
    created = 0
    for spool in Spool.objects.filter(workflow__isnull=False).select_related("workflow"):
        try:
            created += _spool_finalize(spool, now)
        except Exception:  # noqa: BLE001  - one spool's workflow (a version loaded before its numbers were bounded) must not stop the others
            log.exception("finalize: spool %s failed; the other spools go on", spool.name)
    return created


def _spool_finalize(spool: Spool, now: dt.datetime) -> int:
    created = 0
    workflow = spool.workflow.workflow
    finalized = Job.objects.filter(spool=spool, origin=JobOrigin.FINALIZE).values("generation")
    for step in workflow.steps.values():
        if step.finalize_next is None:
            continue
        done = (
            Job.objects.filter(spool=spool, state=step.number, status=S.OK, finished_at__lte=now - dt.timedelta(days=step.finalize_after_days))
            .exclude(origin=JobOrigin.FINALIZE)
            .exclude(generation__in=finalized)
            .order_by("generation")
        )
        for job in done:
            try:
                with transaction.atomic():
                    job_create(
                        spool=spool,
                        step=workflow.step(step.finalize_next),
                        status=S.WAITING,
                        timestamp=now,
                        origin=JobOrigin.FINALIZE,
                        generation=job.generation,
                    )
                created += 1
            except IntegrityError:
                continue  # another process finalized this generation first
    return created


def dispatcher_cycle(*, sweep: bool) -> int:
    """One turn of the dispatcher loop: housekeeping when asked, then start what is due."""
    if sweep:
        dispatcher_sweep()
    return jobs_dispatch()



# --- the dispatcher ----------------------------------------------------------------------------


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _local(now: dt.datetime) -> dt.datetime:
    return now.astimezone(zoneinfo.ZoneInfo(settings.PORTAL_TIME_ZONE))


@dataclass
class _Gates:
    """The (spool, step) pairs that may not start now, and why."""

    closed: list[tuple[int, int]] = field(default_factory=list)  # weekday, parallel limit: no exception
    outside_window: list[tuple[int, int]] = field(default_factory=list)  # mintime/maxtime: a named start may pass
    limited: list[tuple[int, int]] = field(default_factory=list)  # open, with a parallel limit: claimed one by one under a lock

    def exclude(self, jobs: models.QuerySet[Job]) -> models.QuerySet[Job]:
        for spool_id, state in self.closed:
            jobs = jobs.exclude(spool_id=spool_id, state=state)
        for spool_id, state in self.outside_window:
            jobs = jobs.exclude(spool_id=spool_id, state=state, ignore_time_window=False)
        return jobs

    def limited_q(self) -> models.Q:
        q = models.Q(pk__in=[])
        for spool_id, state in self.limited:
            q |= models.Q(spool_id=spool_id, state=state)
        return q


def _gates(spools: dict[int, Spool], local: dt.datetime) -> _Gates:
    """Only the steps that have a gate are looked at (``Workflow.gated_steps``): a long workflow costs nothing more."""
    gates = _Gates()
    gated = [(spool, step) for spool in spools.values() for step in spool.workflow.workflow.gated_steps]
    running = _running_by_state() if any(step.parallel is not None for _, step in gated) else Counter()
    for spool, step in gated:
        pair = (spool.id, step.number)
        # The Step's gate rules, the same that name a held job's waiting_for (selectors.JobGates).
        if step.weekday_gate(local) or step.parallel_full(running[step.number]):
            gates.closed.append(pair)
        elif step.time_window_gate(local):
            gates.outside_window.append(pair)
        if step.parallel is not None:
            gates.limited.append(pair)
    return gates


def _spools_readable(spools: dict[int, Spool]) -> dict[int, Spool]:
    """The spools whose workflow can be read; one that cannot is logged and left out of this turn."""
    readable = {}
    for spool_id, spool in spools.items():
        try:
            spool.workflow.workflow  # noqa: B018  - parsed here, so a stored version that fails fails alone
        except Exception:  # noqa: BLE001
            log.exception("dispatcher: the workflow of spool %s cannot be read; the other spools go on", spool.name)
            continue
        readable[spool_id] = spool
    return readable


def _running_by_state() -> Counter:
    """Jobs holding a place of their step's parallel limit: Running, or claimed for a worker."""
    return Counter(dict(Job.objects.occupying().values_list("state").annotate(n=models.Count("id")).order_by()))


def scheduler_is_shut_down() -> bool:
    return SchedulerControl.objects.filter(id=SchedulerControl.SINGLETON_ID, shut_down=True).exists()


def jobs_claim_due(*, limit: int, first_job_id: int | None = None, only_job_id: int | None = None) -> list[tuple[Job, uuid.UUID, Step]]:
    """Claim up to ``limit`` due jobs whose gates pass, oldest first (``first_job_id`` before the rest)."""
    now = clock.now()
    spools = _spools_readable({
        s.id: s for s in Spool.objects.filter(enabled=True, workflow__isnull=False).select_related("workflow").defer(*WITHOUT_STEPS)
    })
    if not spools:
        return []
    gates = _gates(spools, _local(now))
    due = gates.exclude(Job.objects.due(now).filter(spool_id__in=list(spools)))
    if only_job_id is not None:
        due = due.filter(id=only_job_id)
    claims: list[tuple[Job, uuid.UUID, Step]] = []
    failed: set[int] = set()
    if connection.vendor == "postgresql":
        # One statement claims the jobs of steps without a parallel limit; those with one go on below, one by one.
        while len(claims) < limit:
            unlimited = due.exclude(gates.limited_q()).exclude(spool_id__in=failed)
            got, bad = _jobs_claim_skip_locked(unlimited, spools=spools, limit=limit - len(claims), first_job_id=first_job_id, now=now)
            claims += got
            if not bad:
                break
            failed |= bad  # released again: the turn goes on with the other spools
        if len(claims) >= limit or not gates.limited:
            return claims
        due = due.filter(gates.limited_q()).exclude(spool_id__in=failed)
    candidates = list(due.order_by("timestamp", "id")[: limit - len(claims) + 20])
    if first_job_id is not None:
        candidates.sort(key=lambda job: job.id != first_job_id)
    for job in candidates:
        if len(claims) >= limit:
            break
        if job.spool_id in failed:
            continue
        spool = spools[job.spool_id]
        try:
            claim = _job_claim_step(job=job, spool=spool, now=now)
        except Exception:  # noqa: BLE001  - DOMAIN §5: one spool's failure never stops the turn for the others
            log.exception("dispatcher: job %s of spool %s could not be claimed; the other spools go on", job.id, spool.name)
            failed.add(job.spool_id)
            continue
        if claim is not None:
            claims.append(claim)
    return claims


def _jobs_claim_skip_locked(
    due: models.QuerySet[Job], *, spools: dict[int, Spool], limit: int, first_job_id: int | None, now: dt.datetime
) -> tuple[list[tuple[Job, uuid.UUID, Step]], set[int]]:
    """PostgreSQL: claim up to ``limit`` due jobs in one UPDATE over a ``FOR UPDATE SKIP LOCKED`` pick, and their attempts.

    Two dispatchers or workers claiming at once skip each other's rows instead of waiting on them;
    the same rules hold as for ``_job_claim`` (a claim by the database's clock, the job Waiting
    until a worker picks it up, a lapsed unpicked attempt dropped), in one transaction. Also returns
    the spools whose claim failed (their jobs released), for the caller to leave out.
    """
    order = ("timestamp", "id")
    if first_job_id is not None:
        order = (models.Case(models.When(id=first_job_id, then=0), default=1), *order)
    picked = due.order_by(*order).annotate(relapsed=models.Q(claim_token__isnull=False)).values("id", "relapsed")[:limit]
    pick, params = picked.query.sql_with_params()
    table = connection.ops.quote_name(Job._meta.db_table)
    claims: list[tuple[Job, uuid.UUID, Step]] = []
    failed: set[int] = set()
    # No savepoint inside a caller's transaction (a worker's outcome): the caller's own decides what a failure undoes.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET claim_token = gen_random_uuid(), lease_until = STATEMENT_TIMESTAMP() + %s * INTERVAL '1 second',"
            f" updated_at = %s FROM ({pick} FOR UPDATE SKIP LOCKED) AS picked (id, relapsed) WHERE {table}.id = picked.id"
            f" RETURNING {table}.id, spool_id, generation, state, attempt, type, claim_token, picked.relapsed",
            [settings.JOB_LEASE_SECONDS, now, *params],
        )
        rows = sorted(cursor.fetchall(), key=lambda row: (row[0] != first_job_id, row[0]))
        if not rows:
            return claims, failed
        tokens = [row[6] for row in rows]
        relapsed = [row[0] for row in rows if row[7]]  # a claim before this one lapsed: its unpicked attempt goes
        lapsed = JobAttempt.objects.filter(job_id__in=relapsed, started_at__isnull=True, finished_at__isnull=True)
        if relapsed and lapsed.exclude(claim_token__in=tokens).delete()[0]:
            log.warning("jobs %s: claims no worker picked up within %s s are claimed again", [r[0] for r in rows], settings.JOB_LEASE_SECONDS)
        attempts = []
        for job_id, spool_id, generation, state, attempt, type_, token, _ in rows:
            job = Job(id=job_id, spool_id=spool_id, generation=generation, state=state, attempt=attempt, type=type_,
                      status=S.WAITING, claim_token=token)
            spool = spools[spool_id]
            try:
                step = spool.workflow.workflow.step(state)
                if step is None:
                    _job_step_missing(job, spool, now)
                    continue
                command = step.argv(spool=spool.name, generation=generation)
            except Exception:  # noqa: BLE001  - DOMAIN §5: one spool's failure never stops the turn for the others
                log.exception("dispatcher: job %s of spool %s could not be claimed; the other spools go on", job_id, spool.name)
                Job.objects.filter(id=job_id, claim_token=token).update(claim_token=None, lease_until=None)
                failed.add(spool_id)
                continue
            attempts.append(JobAttempt(job_id=job_id, state=state, attempt=attempt, type=type_, workflow_version=spool.workflow,
                                       command=command, claim_token=token, claimed_at=now))
            claims.append((job, token, step))
        JobAttempt.objects.bulk_create(attempts)
    return claims, failed


def _job_claim_step(*, job: Job, spool: Spool, now: dt.datetime) -> tuple[Job, uuid.UUID, Step] | None:
    step = spool.workflow.workflow.step(job.state)
    if step is None:
        _job_step_missing(job, spool, now)
        return None
    token = _job_claim(job=job, spool=spool, step=step, now=now)
    return None if token is None else (job, token, step)


def jobs_dispatch(*, first_job_id: int | None = None, extra: int = 0, limit: int | None = None) -> int:
    """Claim due jobs whose gates pass and hand each to a django-q2 worker; return how many.

    The dispatcher loop calls it every DISPATCHER_POLL_MS. At most
    DISPATCHER_QUEUE_AHEAD claimed jobs wait for a worker at any time (Waiting,
    "a free worker"), so the queue stays short; a worker that ends its time
    budget hands its job's next step over with ``first_job_id`` and
    ``extra=1, limit=1`` (the worker it frees).
    """
    if scheduler_is_shut_down():
        return 0
    capacity = settings.DISPATCHER_QUEUE_AHEAD + extra - Job.objects.queued().count()
    if limit is not None:
        capacity = min(capacity, limit)
    if capacity <= 0:
        return 0
    claims = jobs_claim_due(limit=capacity, first_job_id=first_job_id)
    for job, token, step in claims:
        _job_enqueue(job, token, step)
    return len(claims)


def _job_step_missing(job: Job, spool: Spool, now: dt.datetime) -> None:
    """A reload removed the step a job waits at: it cannot run, so it is in Error with the reason."""
    note = f"[portal] step {job.state} is not in workflow v{spool.workflow.number} of spool {spool.name}\n"
    if Job.objects.filter(id=job.id, status=S.WAITING).update(
        status=S.ERROR, output_tail=note, claim_token=None, lease_until=None, updated_at=now
    ):
        job.spool = spool  # in hand: the alert names it without a query per job
        job_status_follow(job=job, before=S.WAITING, after=S.ERROR, why=note.strip())


def _job_claim(*, job: Job, spool: Spool, step: Step, now: dt.datetime) -> uuid.UUID | None:
    """Claim a due job for a worker with a conditional update; None when another dispatcher was first or a gate closed.

    The job stays Waiting ("a free worker") until a worker picks the claim up and
    starts the step (``worker.job_attempt_pick``). The claim holds for
    JOB_LEASE_SECONDS by the database's clock: a claim no worker took by then (the
    broker lost the task, the dispatcher died before the hand-over) is claimed again,
    so the job is due again within JOB_LEASE_SECONDS and never Zombie.
    """
    token = uuid.uuid4()
    with transaction.atomic():
        if step.parallel is not None:
            # Count and claim under one lock, so two dispatchers never both fill the last slot of a step.
            SchedulerControl.objects.select_for_update().get_or_create(id=SchedulerControl.SINGLETON_ID)
            if Job.objects.occupying().filter(state=step.number).exclude(id=job.id).count() >= step.parallel:
                return None
        claimed = Job.objects.due(now).filter(id=job.id).update(
            claim_token=token, lease_until=db_now_plus(settings.JOB_LEASE_SECONDS), updated_at=now
        )
        if claimed != 1:
            return None
        # A claim that lapsed before any worker took it leaves no attempt behind: it never ran.
        lapsed = JobAttempt.objects.filter(job_id=job.id, started_at__isnull=True, finished_at__isnull=True).exclude(claim_token=token)
        if lapsed.delete()[0]:
            log.warning("job %s: the claim no worker picked up within %s s is claimed again", job.id, settings.JOB_LEASE_SECONDS)
        JobAttempt.objects.create(
            job_id=job.id,
            state=job.state,
            attempt=job.attempt,
            type=job.type,
            workflow_version=spool.workflow,
            command=step.argv(spool=spool.name, generation=job.generation),
            claim_token=token,
            claimed_at=now,
        )
    return token


def job_claim_release(job_id: int, token: uuid.UUID | str, why: str) -> bool:
    """Give a claim no worker has started back (the broker refused it, an operator changed the job)."""
    with transaction.atomic():
        released = Job.objects.filter(id=job_id, claim_token=token, status=S.WAITING).update(
            claim_token=None, lease_until=None, updated_at=clock.now()
        )
        JobAttempt.objects.filter(claim_token=token, started_at__isnull=True).delete()
        if released:
            jobs_wake()
    if released:
        log.info("job %s: claim released: %s", job_id, why)
    return bool(released)


def _job_enqueue(job: Job, token: uuid.UUID, step: Step) -> None:
    from django_q.tasks import async_task

    try:
        async_task(
            RUN_TASK,
            job.id,
            str(token),
            task_name=f"job {job.id} step {step.number} attempt {job.attempt}",
            group="workflow-jobs",
            # a worker starts attempts for its budget, the last one may take the time limit: the margin covers the rest
            timeout=settings.JOB_WORKER_BUDGET_SECONDS + settings.JOB_TIME_LIMIT_SECONDS + 30,
        )
    except Exception:
        # The broker refused it: give the job back, so the next cycle tries again.
        job_claim_release(job.id, token, "the broker refused the task")
        raise


