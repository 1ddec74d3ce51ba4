"""DOMAIN §5, running steps safely: the step's environment, its process group, the outcome journal,
claims that wait for a free worker, and one E_HeartbeatStart per start of the portal's processes.

The faults themselves (kill -9, a database restarted, Redis restarted) are in tests/faults/."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import OperationalError

from portal.alerts.models import AlertEpisode
from scheduling.scheduler import tasks as scheduler_tasks
from scheduling.scheduler.heartbeat import heartbeat_start_claim
from scheduling.workflows import worker
from scheduling.workflows.command import run_command
from scheduling.workflows.dispatcher import jobs_dispatch, jobs_mark_zombies
from scheduling.workflows.journal import journal_entries
from scheduling.workflows.models import Job, JobAttempt, JobStatus, db_now_plus
from scheduling.workflows.selectors import job_gates
from scheduling.workflows.services import job_pause
from tests.scheduling.conftest import TEST_ACTOR

S = JobStatus
NOW = "2026-03-02T10:00:00Z"
ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "SECRET_KEY": "s" * 60,
    "DATABASE_URL": "postgres://portal:secret@db/portal",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "REDIS_URL": "redis://:secret@redis:6379/0",
    "SOME_OTHER_SETTING": "x",
}


def pgrep(marker: str) -> list[str]:
    done = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


# --- the environment ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_step_sees_only_the_allowed_environment(load_spool, waiting_job, now, settings, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ORACLE_HOME", "/opt/oracle")
    monkeypatch.setenv("LANG", "C.UTF-8")
    settings.JOB_ENV_PASSTHROUGH = ["ORACLE_HOME", "NOT_SET_ANYWHERE"]
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=env\n"), 1)
    jobs_dispatch()
    job.refresh_from_db()
    seen = dict(line.split("=", 1) for line in job.output_tail.splitlines() if "=" in line)
    assert set(seen) <= {"PATH", "HOME", "LANG", "TZ", "ORACLE_HOME", "PORTAL_JOB_ID", "PORTAL_SPOOL", "PORTAL_GENERATION", "PORTAL_STATE", "PORTAL_ATTEMPT"}
    assert seen["ORACLE_HOME"] == "/opt/oracle" and seen["LANG"] == "C.UTF-8" and seen["PATH"] == os.environ["PATH"]
    assert (seen["PORTAL_JOB_ID"], seen["PORTAL_SPOOL"], seen["PORTAL_GENERATION"], seen["PORTAL_STATE"], seen["PORTAL_ATTEMPT"]) == (
        str(job.id), "billing", "000001", "1", "1"
    )
    assert not any(value in job.output_tail for value in SECRETS.values())


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "REDIS_URL", "PORTAL_DATA_DIR", "BAD NAME"])
def test_a_setting_of_the_portal_cannot_be_passed_through(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    env.update(DEBUG="1", PORTAL_DATA_DIR=str(tmp_path), JOB_ENV_PASSTHROUGH=f"ORACLE_HOME,{name}")
    done = subprocess.run([sys.executable, "-c", "import portal.settings"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "JOB_ENV_PASSTHROUGH" in done.stderr


# --- the process group ------------------------------------------------------------------------

STEP_HOLDER = """
import os, sys
sys.path.insert(0, {root!r})
from scheduling.workflows.command import run_command
run_command(sys.argv[1:], cwd="/", env={{"PATH": os.environ["PATH"]}}, time_limit=120, tail_chars=100,
            still_ours=lambda: True, check_every=5, kill_grace=1)
"""


def test_kill_9_of_the_worker_leaves_no_process_of_its_step(tmp_path):
    """The parent-death signal reaches the step's guard, which kills the whole group (grandchildren too)."""
    marker = f"step-marker-{os.getpid()}-{time.monotonic_ns()}"
    # Durations of this test alone (GNU sleep takes fractions): other processes' sleeps are not ours to count.
    background, foreground = (f"sleep {n}.{os.getpid()}{time.monotonic_ns() % 10_000}" for n in (300, 301))
    script = tmp_path / f"{marker}.sh"
    script.write_text(f"#!/bin/sh\n{background} &\nsh -c '{foreground}; echo {marker}'\n")
    script.chmod(0o755)
    holder = subprocess.Popen([sys.executable, "-c", STEP_HOLDER.format(root=str(ROOT)), str(script)])
    deadline = time.monotonic() + 10
    while len(pgrep(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pgrep(marker), "the step did not start"
    holder.kill()  # kill -9 of the worker
    holder.wait()

    def left() -> list[str]:
        return pgrep(marker) + pgrep(background) + pgrep(foreground)

    deadline = time.monotonic() + 5
    while left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left() == []


def test_a_stopped_step_gets_sigterm_then_sigkill_after_the_grace():
    began = time.monotonic()
    result = run_command(
        ["sh", "-c", "trap 'echo term' TERM; while :; do sleep 0.1; done"], cwd="/", env={"PATH": os.environ["PATH"]},
        time_limit=0.5, tail_chars=500, still_ours=lambda: True, check_every=5, kill_grace=1.5,
    )
    took = time.monotonic() - began
    assert result.timed_out and result.return_code == -signal.SIGKILL
    assert "term" in result.output_tail
    assert 1.8 <= took < 5


def test_a_step_that_ends_on_sigterm_is_not_waited_for():
    began = time.monotonic()
    result = run_command(["sleep", "30"], cwd="/", env={"PATH": os.environ["PATH"]}, time_limit=0.3, tail_chars=500,
                         still_ours=lambda: True, check_every=5, kill_grace=10)
    assert result.timed_out and result.return_code == -signal.SIGTERM and time.monotonic() - began < 3


def _step(argv: list[str], **kwargs):
    return run_command(argv, cwd="/", env={"PATH": os.environ["PATH"]}, time_limit=kwargs.pop("time_limit", 30), tail_chars=500,
                       still_ours=lambda: True, check_every=5, kill_grace=kwargs.pop("kill_grace", 1))


def test_the_steps_of_a_worker_are_started_by_one_guard_server_not_by_the_worker():
    parents = {_step(["sh", "-c", "echo $PPID"]).output_tail.strip() for _ in range(3)}
    assert len(parents) == 1 and parents != {str(os.getpid())}


def test_a_killed_guard_server_takes_its_step_along_and_the_next_step_gets_a_new_one():
    from portal.lib.stepguard import start_step

    step = start_step(["sh", "-c", "echo $PPID; exec sleep 300"], grace=1, cwd="/", env={"PATH": os.environ["PATH"]})
    server = int(step.stdout.readline())
    os.kill(server, signal.SIGKILL)
    assert step.wait(timeout=10) == -signal.SIGKILL  # the worker hears the server go
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{step.pid}") and time.monotonic() < deadline:  # the kernel's SIGKILL to the step
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{step.pid}") or open(f"/proc/{step.pid}/stat").read().split(") ")[1][0] == "Z"
    result = _step(["sh", "-c", "echo $PPID"])
    assert result.return_code == 0 and result.output_tail.strip() not in ("", str(server))


SHIELDED = """
import sys
sys.path.insert(0, {root!r})
from portal.lib.loop import run_shielded
sys.exit(run_shielded([sys.executable, "-c", {child!r}], grace=1))
"""
STUBBORN_CLUSTER = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *a: print("cluster stopping", flush=True))
subprocess.Popen(["sleep", "{marker}"])  # a worker of the cluster
print("cluster running", flush=True)
while True:
    time.sleep(0.1)
"""


def test_ctrl_c_stops_the_worker_cluster_within_the_grace_and_leaves_nothing(tmp_path):
    """run_shielded: SIGTERM to the cluster's main process, SIGKILL to all of it after the grace; never a loop."""
    marker = f"{1000 + os.getpid() % 1000}.{time.monotonic_ns() % 100000}"
    process = subprocess.Popen(
        [sys.executable, "-c", SHIELDED.format(root=str(ROOT), child=STUBBORN_CLUSTER.replace("{marker}", marker))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout.readline().strip() == "cluster running"  # relayed through run_shielded
    process.send_signal(signal.SIGINT)
    began = time.monotonic()
    output, _ = process.communicate(timeout=10)
    assert time.monotonic() - began < 4
    assert "cluster stopping" in output
    assert pgrep(f"sleep {marker}") == []


# --- claims wait for a free worker ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_paused_claim_is_never_started_by_its_late_task(load_spool, waiting_job, now, held):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    jobs_dispatch()
    assert job_gates().waiting_for(Job.objects.get(id=job.id)) == "a free worker"
    job_pause(job=job, actor=TEST_ACTOR)
    job.refresh_from_db()
    assert (job.status, job.claim_token) == (S.PAUSE, None)
    assert "the claim is gone" in held.run_all()[0]
    assert not JobAttempt.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_the_parallel_limit_counts_claims_waiting_for_a_worker(load_spool, waiting_job, now, held):
    now(NOW)
    spool = load_spool("[1]\ncommand=true\nparallel=1\n")
    first, second = waiting_job(spool, 1), waiting_job(spool, 1)
    assert jobs_dispatch() == 1
    assert jobs_dispatch() == 0
    assert job_gates().waiting_for(Job.objects.get(id=second.id)) == f"parallel 1: jobs {first.id} running"
    # the claim lapses without a worker: the same job is claimed again, the limit still holds
    Job.objects.filter(id=first.id).update(lease_until=db_now_plus(-1))
    assert jobs_dispatch() == 1
    assert [job_id for job_id, _ in held.claims] == [first.id, first.id]


# --- the outcome journal ------------------------------------------------------------------------------


def _claim_and_pick(load_spool, waiting_job, held, text="[1]\ncommand=true\nnext=2\n[2]\ncommand=true\n"):
    job = waiting_job(load_spool(text), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    held.claims.clear()
    assert worker.job_attempt_pick(job_id, token)
    return job, token


@pytest.mark.django_db
def test_an_outcome_the_database_cannot_take_is_retried_and_written_once_it_is_back(load_spool, waiting_job, now, held, monkeypatch):
    now(NOW)
    job, token = _claim_and_pick(load_spool, waiting_job, held)
    real, calls = worker.job_attempt_finish, []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("the database system is starting up")
        return real(**kwargs)

    monkeypatch.setattr(worker, "job_attempt_finish", flaky)
    summary, written = worker.job_attempt_execute(job.id, token)
    assert written and len(calls) == 3
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.WAITING)
    assert journal_entries() == []


@pytest.mark.django_db
def test_a_next_claim_made_in_a_try_whose_commit_failed_is_never_run(load_spool, waiting_job, now, held, monkeypatch):
    now(NOW)
    first, other = (waiting_job(load_spool("[1]\ncommand=true\n", name=name), 1) for name in ("billing", "ledger"))
    jobs_dispatch()  # both claimed for a worker
    [(first_id, token), (other_id, _)] = held.claims
    real, tries, looks = worker.job_attempt_finish, [], []

    def commit_fails_once(*, then=None, **kwargs):
        tries.append(1)
        if len(tries) > 1:
            return real(then=then, **kwargs)

        def claim_then_fail(**options):
            then(**options)  # the worker picks up the other job beside the outcome...
            raise OperationalError("server closed the connection unexpectedly")  # ...and the commit is lost

        return real(then=claim_then_fail, **kwargs)

    def over_budget(self):
        looks.append(1)
        return len(looks) > 1  # the retry comes after the budget

    monkeypatch.setattr(worker, "job_attempt_finish", commit_fails_once)
    monkeypatch.setattr(worker._NextClaim, "over_budget", over_budget)
    summary = worker.job_run(job_id=first_id, token=token)
    assert summary.startswith("1 attempt(s)")
    assert Job.objects.get(id=first_id).status == S.OK
    other_job = Job.objects.get(id=other_id)
    assert other_job.status == S.WAITING and other_job.started_at is None  # still the dispatcher's claim, for its own task
    assert not JobAttempt.objects.filter(job_id=other_id, started_at__isnull=False).exists()


@pytest.mark.django_db
def test_an_outcome_never_written_stays_in_the_journal_and_the_next_worker_writes_it(load_spool, waiting_job, now, held, monkeypatch, settings):
    now(NOW)
    settings.JOB_OUTCOME_RETRY_SECONDS = 0
    job, token = _claim_and_pick(load_spool, waiting_job, held)

    def away(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(worker, "job_attempt_finish", away)
    summary, written = worker.job_attempt_execute(job.id, token)
    assert not written and "kept in the journal" in summary
    [entry] = journal_entries()
    assert (entry["token"], entry["job"], entry["generation"], entry["state"], entry["attempt"], entry["return_code"]) == (
        str(token), job.id, 1, 1, 1, 0
    )
    assert json.loads(Path(settings.STEP_JOURNAL_FILE).read_text().splitlines()[0])["token"] == str(token)
    monkeypatch.undo()

    assert worker.journal_replay() == 1  # the next worker on the host
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.WAITING)
    assert journal_entries() == []
    assert worker.journal_replay() == 0


@pytest.mark.django_db
def test_a_step_that_finished_before_its_worker_died_is_not_run_again_after_zombie(load_spool, waiting_job, now, held, settings):
    """The worker died between the step's end and the outcome's write: the journal's outcome still applies."""
    now(NOW)
    job, token = _claim_and_pick(load_spool, waiting_job, held, text="[1]\ncommand=true\n")
    from scheduling.workflows.journal import journal_record

    journal_record({"token": str(token), "job": job.id, "generation": 1, "state": 1, "attempt": 1, "return_code": 0, "output_tail": "done\n"})
    Job.objects.filter(id=job.id).update(lease_until=db_now_plus(-1), lapse_seen_at=db_now_plus(-settings.JOB_ZOMBIE_CONFIRM_SECONDS - 1))
    assert jobs_mark_zombies() == 1
    assert AlertEpisode.objects.filter(kind="JOB_ZOMBIE", state="OPEN").count() == 1

    assert worker.journal_replay() == 1
    job.refresh_from_db()
    assert (job.status, job.return_code, job.output_tail) == (S.OK, 0, "done\n")
    attempt = JobAttempt.objects.get(job=job)
    assert attempt.status_after == S.OK and "written late" in attempt.outcome
    assert AlertEpisode.objects.filter(kind="JOB_ZOMBIE", state="OPEN").count() == 0


@pytest.mark.django_db
def test_an_outcome_written_twice_applies_once(load_spool, waiting_job, now, held):
    now(NOW)
    job, token = _claim_and_pick(load_spool, waiting_job, held)
    from scheduling.workflows.command import CommandResult

    first = worker.job_attempt_finish(job_id=job.id, token=token, result=CommandResult(0, ""))
    assert worker.job_attempt_finish(job_id=job.id, token=token, result=CommandResult(0, "")) == first
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.WAITING) and Job.objects.count() == 1


# --- one E_HeartbeatStart per start of the portal -----------------------------------------------------------


@pytest.mark.django_db
def test_one_heartbeat_start_per_start_of_the_portal_processes(settings):
    settings.HEARTBEAT_SECONDS = 60
    start = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    assert heartbeat_start_claim(start) is True  # the clock
    assert heartbeat_start_claim(start) is False  # a django-q2 worker of the same start (inherited start time)
    assert heartbeat_start_claim(start + dt.timedelta(seconds=20)) is False  # the worker process started with the clock
    assert heartbeat_start_claim(start - dt.timedelta(hours=1)) is False  # an older process ticking late
    assert heartbeat_start_claim(start + dt.timedelta(hours=2)) is True  # the portal restarted


@pytest.mark.django_db
def test_a_recycled_django_q2_worker_ticks_e_heartbeat(recorder, now, monkeypatch):
    now(NOW)
    monkeypatch.setattr(scheduler_tasks, "_started", False)
    assert scheduler_tasks.heartbeat().startswith("E_HeartbeatStart at")
    monkeypatch.setattr(scheduler_tasks, "_started", False)  # the worker process recycled: same cluster start
    now("2026-03-02T10:01:00Z")
    assert scheduler_tasks.heartbeat().startswith("E_Heartbeat at")
