"""The fault suite (DOMAIN §5): real faults under real processes on a PostgreSQL cluster and a Redis of
their own. Each test counts from the files its steps write (a line at each start and end), not from the
database alone: steps killed by a database outage 0, outcomes lost 0, steps run twice 0, processes that
did not recover 0, a stranded job due again within JOB_LEASE_SECONDS, never Zombie.

The figures are in docs/workflows.md ("Steps that survive faults")."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from tests.faults.conftest import LEASE_SECONDS, marks_of, pgrep, ran_once_each, wait

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# How long the database stays stopped in the outage test: DOMAIN's 30 s, over seven leases of the
# suite's JOB_LEASE_SECONDS=4, so every lease lapses while the steps run on.
OUTAGE_SECONDS = 30


def test_kill_9_of_a_worker_mid_step_leaves_no_process_of_it_and_reset_runs_one_copy(portal, tmp_path):
    marks, marker = tmp_path / "marks.txt", f"faultmark{os.getpid()}a"
    portal.load_jobs("killed", count=1, seconds=60, marks=marks, marker=marker)
    portal.start("worker", "dispatcher", "clock")
    wait("the step to start", lambda: marks.read_text().count("start") == 1, seconds=60)
    [(_, worker)] = portal.sql("SELECT id, worker FROM scheduling_job WHERE status = 'Running'")
    host, _, pid = worker.rpartition(":")
    assert host == socket.gethostname() and pid.isdigit()  # <host>:<pid> of the process that runs the step
    session = marks.read_text().split()[4]
    assert pgrep("-f", marker) and pgrep("-s", session)

    os.kill(int(pid), signal.SIGKILL)  # kill -9 of the worker running the step
    began = time.monotonic()
    wait("no process of the step", lambda: not pgrep("-f", marker) and not pgrep("-s", session), seconds=10, every=0.1)
    gone_after = time.monotonic() - began
    assert gone_after < 2 + 3  # STEP_KILL_GRACE_SECONDS, and the guard's own poll

    wait("the job to be Zombie", lambda: portal.statuses()["Zombie"] == 1, seconds=60)
    zombie_after = time.monotonic() - began
    portal.manage("jobs", "reset", "killed", "1", "--reason", "its worker was killed")  # as an operator would
    wait("the reset job to run again", lambda: marks.read_text().count("start") == 2, seconds=30)
    assert len(pgrep("-f", marker)) >= 1
    time.sleep(1)
    starts = [line for line in marks.read_text().splitlines() if line.startswith("start")]
    assert len(starts) == 2  # the killed run and exactly one copy after the reset
    running = pgrep("-af", marker)
    assert len([line for line in running if "step.sh" in line and "stepguard" not in line]) == 1, running
    print(f"FIGURES kill-9 worker: step's processes gone after {gone_after:.1f} s, Zombie after {zombie_after:.1f} s, "
          f"reset ran {len(starts) - 1} copy")


def test_a_database_restart_and_stop_kill_no_step_lose_no_outcome_and_run_none_twice(portal, tmp_path):
    marks, marker = tmp_path / "marks.txt", f"faultmark{os.getpid()}b"
    portal.env.update(Q_WORKERS="8", DISPATCHER_QUEUE_AHEAD="8")
    portal.load_jobs("short", count=4, seconds=5, marks=marks, marker=marker)  # these end while the database is away
    portal.load_jobs("long", count=4, seconds=OUTAGE_SECONDS + 12, marks=marks, marker=marker)  # across the stop and a restart
    portal.start("worker", "dispatcher", "clock")
    wait("8 steps running", lambda: marks.read_text().count("start") == 8, seconds=90)

    portal.cluster.stop()  # the database goes away for OUTAGE_SECONDS
    time.sleep(OUTAGE_SECONDS)
    portal.cluster.start()
    time.sleep(2)
    portal.cluster.stop()  # and a quick restart while the long steps still run
    portal.cluster.start()

    wait("every job OK", lambda: portal.statuses()["OK"] == 8, seconds=120)
    seen = marks_of(marks)
    assert len(seen) == 8 and ran_once_each(seen), seen  # generations 1-4 of both spools: 8 steps, each once
    assert sum(len(events) for events in seen.values()) == 16
    assert portal.statuses() == {"OK": 8}
    assert portal.sql("SELECT COUNT(*), COUNT(*) FILTER (WHERE return_code = 0), COUNT(DISTINCT job_id) FROM scheduling_jobattempt") == [(8, 8, 8)]
    assert portal.sql("SELECT COUNT(*) FROM scheduling_jobattempt WHERE status_after = 'Zombie'") == [(0,)]
    journal = portal.data_dir / "step-outcomes.jsonl"
    assert not journal.exists() or journal.read_text() == ""
    for name in ("worker", "dispatcher", "clock"):
        assert portal.alive(name), portal.log()
    worker_log = (portal.data_dir / "worker.log").read_text(errors="replace")
    assert "the lease cannot be renewed now" in worker_log and "the outcome cannot be written now" in worker_log  # the outage was felt
    print(f"FIGURES database stopped {OUTAGE_SECONDS} s and restarted twice under 8 steps: killed 0, outcomes lost 0, run twice 0")


def test_redis_restarted_with_tasks_queued_strands_no_job(portal, tmp_path):
    marks, marker = tmp_path / "marks.txt", f"faultmark{os.getpid()}c"
    portal.env.update(Q_WORKERS="2", DISPATCHER_QUEUE_AHEAD="2")
    portal.load_jobs("busy", count=2, seconds=10, marks=marks, marker=marker)  # the two workers, busy
    portal.load_jobs("queued", count=4, seconds=1, marks=marks, marker=marker)
    portal.manage("shell", code="""
        from monitoring.summaries.models import MonitoredInterface
        from scheduling.scheduler.services import scheduler_task_create
        scheduler_task_create(actor="test", name="hosted", subtype="HOSTED_SERVICE_MONITOR", interval_seconds=10,
                              interfaces=list(MonitoredInterface.objects.filter(code="PAYMENT_ORIGINATOR")))
    """)
    portal.start("worker", "dispatcher", "clock")
    wait("both workers busy", lambda: marks.read_text().count("start") == 2, seconds=60)
    claimed = lambda: portal.sql(  # noqa: E731
        "SELECT id, claim_token::text FROM scheduling_job WHERE status = 'Waiting' AND claim_token IS NOT NULL ORDER BY id"
    )
    wait("two jobs claimed, waiting for a free worker", lambda: len(claimed()) == 2, seconds=30)
    stranded = dict(claimed())

    restarted_at = portal.sql("SELECT now()")[0][0]
    portal.redis.stop()  # no persistence: the queued tasks are gone
    restarted = time.monotonic()
    portal.redis.start()

    due_again: dict[int, float] = {}
    while len(due_again) < len(stranded) and time.monotonic() - restarted < 30:
        now = {job_id: token for job_id, token in portal.sql("SELECT id, claim_token::text FROM scheduling_job WHERE id = ANY(%s)", (list(stranded),))}
        for job_id, token in now.items():
            if job_id not in due_again and token != stranded[job_id]:
                due_again[job_id] = time.monotonic() - restarted
        time.sleep(0.1)
    assert len(due_again) == len(stranded)
    assert max(due_again.values()) <= LEASE_SECONDS + 1.5  # claimed again within JOB_LEASE_SECONDS (and a poll)

    wait("every job OK", lambda: portal.statuses()["OK"] == 6, seconds=90)
    seen = marks_of(marks)
    assert ran_once_each(seen) and sum(len(events) for events in seen.values()) == 12, seen
    assert portal.sql("SELECT COUNT(*) FROM scheduling_jobattempt WHERE status_after = 'Zombie'") == [(0,)]
    assert portal.sql("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM scheduling_jobattempt") == [(6, 6)]
    # The scheduler task: never held PROCESSING longer than SCHEDULER_CLAIM_SECONDS (and a tick) by a lost task.
    wait("the summary task to run after the restart", lambda: portal.sql(
        "SELECT COUNT(*) FROM scheduling_tasktransition WHERE event = 'E_ActionDone' AND at > %s", (restarted_at,))[0][0] >= 1,
        seconds=60)
    held = portal.sql("""
        SELECT MAX(EXTRACT(EPOCH FROM (
            SELECT MIN(b.at) FROM scheduling_tasktransition b WHERE b.task_id = a.task_id AND b.at >= a.at AND b.id > a.id
        ) - a.at)) FROM scheduling_tasktransition a WHERE a.to_state = 'PROCESSING'
    """)[0][0]
    assert held is not None and float(held) <= 20 + 2 * 2 + 2
    print(f"FIGURES Redis restarted with 2 tasks queued: due again after {max(due_again.values()):.1f} s "
          f"(JOB_LEASE_SECONDS={LEASE_SECONDS}), Zombie 0, run twice 0; a scheduler task PROCESSING at most {float(held):.1f} s")


def test_kill_9_of_the_dispatcher_and_the_clock_recover_and_run_nothing_twice(portal, tmp_path):
    marks, marker = tmp_path / "marks.txt", f"faultmark{os.getpid()}d"
    portal.env.update(Q_WORKERS="2")
    portal.load_jobs("chain", count=16, seconds=0.3, marks=marks, marker=marker, steps=2)
    portal.start("worker", "dispatcher", "clock")
    wait("the first steps", lambda: marks.read_text().count("end") >= 3, seconds=60)
    portal.kill9("dispatcher")
    portal.kill9("clock")
    time.sleep(2)
    killed_at = portal.sql("SELECT now()")[0][0]
    portal.start("dispatcher", "clock")

    wait("every job OK", lambda: portal.statuses()["OK"] == 16, seconds=150)
    seen = marks_of(marks)
    assert len(seen) == 32 and ran_once_each(seen), seen
    assert portal.sql("SELECT COUNT(*) FROM scheduling_jobattempt WHERE status_after = 'Zombie'") == [(0,)]
    assert portal.sql("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM scheduling_jobattempt GROUP BY job_id, state) a") == [(1,)]
    wait("the clock ticking again", lambda: portal.sql("SELECT last_tick_at > %s FROM portal_heartbeat", (killed_at,)) == [(True,)], seconds=20)
    wait("the dispatcher's sign of life", lambda: portal.sql(
        "SELECT dispatcher_seen_at > %s FROM scheduling_schedulercontrol", (killed_at,)) == [(True,)], seconds=20)
    for name in ("worker", "dispatcher", "clock"):
        assert portal.alive(name), portal.log()
    print("FIGURES kill -9 of the dispatcher and the clock: recovered, 32 steps each once")
