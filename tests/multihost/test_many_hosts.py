"""DOMAIN §9: any number of each process on several hosts make one portal. Each host here is a network,
PID and UTS namespace of this machine with its own host name, sharing one PostgreSQL and one Redis:
no job step, scheduler action or message runs or goes out twice; a host that dies or is cut off loses
its leases and nothing else (DOMAIN §5). The figures are in docs/scaling.md ("Many hosts")."""

from __future__ import annotations

import collections
import json
import subprocess
import time

import pytest

from tests.faults.conftest import SETTINGS
from tests.multihost.conftest import write_script
from tests.multihost.harness import manage, wait_for

pytestmark = pytest.mark.slow

JOBS = 200  # single-step jobs, each appending its start and end to one file
MESSAGES = 200  # written before the hosts start: both publishers race for them
MARK = """#!/bin/sh
# Arguments: the marks file, the generation, seconds to sleep. Start and end each leave a line.
echo "start $2 $(hostname) $$" >> "$1"
sleep "$3"
echo "end $2 $(hostname) $$" >> "$1"
"""


def load_jobs(env: dict, tmp_path, *, count: int, sleep: str, spool: str = "multi") -> str:
    """A spool whose single step marks its start and end (``<spool>/<generation>``), and ``count`` jobs due now."""
    marks = tmp_path / "marks.txt"
    marks.touch()
    script = write_script(tmp_path / "mark.sh", MARK)
    workflow = tmp_path / f"{spool}.ini"
    workflow.write_text(f"[1]\ntext=Mark\ncommand={script} {marks} {spool}/<Generation> {sleep}\n")
    manage(env, "shell", code=f"""
        from scheduling.workflows.services import job_add, job_start, workflow_load
        spool = workflow_load(spool_name={spool!r}, path={str(workflow)!r}, actor="test").spool
        for _ in range({count}):
            job_start(job=job_add(spool=spool, state=1, actor="test"), actor="test", named=False)
    """)
    return str(marks)


def marks_of(path: str) -> dict[str, list[tuple[str, str]]]:
    """generation -> [(start|end, host)] in the order they were written."""
    seen = collections.defaultdict(list)
    for line in open(path).read().splitlines():
        event, generation, host, _pid = line.split()
        seen[generation].append((event, host))
    return seen


def statuses(cluster) -> collections.Counter:
    return collections.Counter(dict(cluster.sql("SELECT status, COUNT(*) FROM scheduling_job GROUP BY status")))


def write_messages(env: dict, count: int) -> None:
    manage(env, "shell", code=f"""
        from portal.services import outbox_enqueue
        from tests.portal.payloads import GAP, control_message, gap_message
        for seq in range(1, {count // 2} + 1):
            outbox_enqueue(kind="control_message", dedupe_key=f"c{{seq}}", payload=control_message(window_id=seq))
            outbox_enqueue(kind=GAP, dedupe_key=f"g{{seq}}", payload=gap_message(seq))
    """)


def add_summary_task(env: dict) -> None:
    manage(env, "shell", code="""
        from monitoring.summaries.models import MonitoredInterface
        from scheduling.scheduler.services import scheduler_task_create
        scheduler_task_create(actor="test", name="hosted", subtype="HOSTED_SERVICE_MONITOR", interval_seconds=10,
                              interfaces=list(MonitoredInterface.objects.filter(code="PAYMENT_ORIGINATOR")))
    """)


@pytest.mark.parametrize("broker", ["redis", "orm"])
def test_two_hosts_run_each_step_action_and_message_once(broker, portal_db, cluster, make_hosts, queue, sqs, tmp_path):
    marks = load_jobs(portal_db, tmp_path, count=JOBS, sleep="0")
    add_summary_task(portal_db)
    write_messages(portal_db, MESSAGES)
    hosts = make_hosts(2, broker=broker, queue_url=queue, HEARTBEAT_SECONDS="2")
    for host in hosts:
        host.start_backend(host.env)

    try:
        wait_for("every job OK", lambda: statuses(cluster)["OK"] == JOBS, seconds=240)
        # Several ticks of the summary task's 10 s interval, from two clocks at once.
        wait_for("four summary actions", lambda: cluster.sql(
            "SELECT COUNT(*) FROM scheduling_tasktransition WHERE event = 'E_ActionDone'")[0][0] >= 4, seconds=120)
        wait_for("no message left to send", lambda: not cluster.sql(
            "SELECT 1 FROM portal_outboundmessage WHERE status <> 'SENT' LIMIT 1"), seconds=120)
    finally:
        for host in hosts:
            host.stop()

    seen = marks_of(marks)
    assert len(seen) == JOBS
    assert all(events == [("start", events[0][1]), ("end", events[0][1])] for events in seen.values())
    assert cluster.sql("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM scheduling_jobattempt GROUP BY job_id) a") == [(1,)]
    # One action per interval: each one starts where the one before ended, none twice.
    intervals = [note for (note,) in cluster.sql(
        "SELECT note FROM scheduling_tasktransition WHERE event = 'E_ActionDone' ORDER BY at, id")]
    assert len(intervals) == len(set(intervals))
    bounds = [note[note.index("[") + 1: note.index(")")].split(", ") for note in intervals]
    assert all(previous[1] == current[0] for previous, current in zip(bounds, bounds[1:], strict=False))
    # Each message once on the queue, and every one of them.
    sent = {uuid for (uuid,) in cluster.sql("SELECT uuid::text FROM portal_outboundmessage")}
    received = []
    client = sqs.client()
    while batch := client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(m["Body"]).get("uuid") for m in batch]
        client.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    assert len(received) == len(set(received)) == len(sent) >= MESSAGES
    print(f"FIGURES two hosts on {broker}: {JOBS} jobs each run once, {len(sent)} messages each sent once, "
          f"{len(intervals)} summary actions none twice")


# Short leases, graces and claims (the fault suite's), so that a host's death shows in seconds.
FAULTS = {**SETTINGS, "Q_WORKERS": "4"}
LONG = "45.5"  # seconds of the steps a host dies or is cut off under (a length no other process has)


def running_on(cluster) -> dict[int, tuple[str, str]]:
    """Running jobs: id -> (worker, spool/generation)."""
    return {job_id: (worker, f"{spool}/{generation}") for job_id, worker, spool, generation in cluster.sql(
        "SELECT j.id, j.worker, s.name, j.generation FROM scheduling_job j JOIN scheduling_spool s ON s.id = j.spool_id "
        "WHERE j.status = 'Running'")}


def step_processes(marks: str) -> list[str]:
    """Every process of a step, whichever namespace it runs in: its shell (by the marks file) and its sleep."""
    done = subprocess.run(["pgrep", "-af", f"{marks}|sleep {LONG}"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


def watch_zombies(cluster, job_ids: list[int], seconds: float) -> tuple[int, int]:
    """Polls the jobs: (how many became Zombie, how many of those before the last lease seen had lapsed, by the DB clock)."""
    lease, zombie, early = {}, set(), set()
    deadline = time.monotonic() + seconds
    while len(zombie) < len(job_ids) and time.monotonic() < deadline:
        for job_id, status, lease_until, now in cluster.sql(
            "SELECT id, status, lease_until, now() FROM scheduling_job WHERE id = ANY(%s)", (job_ids,)):
            if status == "Running":
                lease[job_id] = lease_until
            elif status == "Zombie" and job_id not in zombie:
                zombie.add(job_id)
                if job_id not in lease or now <= lease[job_id]:
                    early.add(job_id)
        time.sleep(0.1)
    return len(zombie), len(early)


def test_a_host_killed_mid_step_leaves_no_step_process_its_jobs_zombie_after_their_leases_and_its_actions_retried(
    portal_db, cluster, make_hosts, queue, tmp_path,
):
    marks = load_jobs(portal_db, tmp_path, count=2, sleep=LONG, spool="dying")
    add_summary_task(portal_db)
    dying, survivor = make_hosts(2, broker="redis", queue_url=queue, **FAULTS)
    dying.start_backend(dying.env)
    wait_for("both steps running on host-a", lambda: len(running_on(cluster)) == 2 and open(marks).read().count("start") == 2, seconds=90)
    assert all(worker.startswith("host-a:") for worker, _ in running_on(cluster).values())
    dying_jobs = list(running_on(cluster))

    # A summary action claimed by host-a and held there: the outbox, where it writes, is locked for a moment.
    lock = cluster.connect()
    try:
        with lock.cursor() as cursor:
            cursor.execute("LOCK TABLE portal_outboundmessage IN SHARE MODE")
        wait_for("host-a's worker holding a summary action", lambda: cluster.sql(
            "SELECT COUNT(*) FROM scheduling_schedulertask WHERE state = 'PROCESSING'")[0][0] == 1 and cluster.sql(
            "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = 'portal_outboundmessage'::regclass")[0][0] >= 1,
            seconds=60, every=0.2)
        held = cluster.sql("SELECT id FROM scheduling_tasktransition WHERE to_state = 'PROCESSING' ORDER BY id DESC LIMIT 1")[0][0]
        dying.crash()  # SIGKILL of the host's PID 1: every process of its PID namespace dies at once
    finally:
        lock.rollback()
        lock.close()
    crashed_at = cluster.sql("SELECT now()")[0][0]
    survivor.start_backend(survivor.env)

    try:
        wait_for("no process of the steps", lambda: not step_processes(marks), seconds=10, every=0.1)
        zombies, early = watch_zombies(cluster, dying_jobs, seconds=90)
        assert (zombies, early) == (2, 0)  # Zombie, and only once the lease had lapsed
        retried = wait_for("the held action retried by host-b", lambda: cluster.sql(
            "SELECT MIN(at) FROM scheduling_tasktransition WHERE id > %s AND event = 'E_ActionDone'", (held,))[0][0], seconds=90)
        for generation in (1, 2):
            manage(portal_db, "jobs", "reset", "dying", str(generation), "--reason", "its host died")
        wait_for("both jobs OK after the reset", lambda: statuses(cluster)["OK"] == 2, seconds=120)
    finally:
        survivor.stop()

    seen = marks_of(marks)
    # Each step: the run killed with host-a (a start, no end), then one copy on host-b.
    assert {g: events for g, events in seen.items()} == {
        f"dying/{g:06d}": [("start", "host-a"), ("start", "host-b"), ("end", "host-b")] for g in (1, 2)}
    intervals = [note for (note,) in cluster.sql("SELECT note FROM scheduling_tasktransition WHERE event = 'E_ActionDone' ORDER BY at, id")]
    assert len(intervals) == len(set(intervals))
    claim = int(SETTINGS["SCHEDULER_CLAIM_SECONDS"])
    waited = (retried - crashed_at).total_seconds()
    assert waited <= claim + 3 * int(SETTINGS["HEARTBEAT_SECONDS"])  # retried within SCHEDULER_CLAIM_SECONDS (and a tick or so)
    print(f"FIGURES host killed under 2 steps and a summary action: step processes left 0, Zombie before the lease lapsed 0, "
          f"reset ran 1 copy each on host-b; the action retried by host-b {waited:.1f} s after the crash (claim {claim} s)")


def test_a_host_cut_off_loses_its_leases_and_nothing_else(portal_db, cluster, make_hosts, queue, tmp_path):
    marks = load_jobs(portal_db, tmp_path, count=2, sleep=LONG, spool="cut")
    add_summary_task(portal_db)
    cut, other = make_hosts(2, broker="redis", queue_url=queue, **{**FAULTS, "Q_WORKERS": "2"})
    cut.start_backend(cut.env)
    wait_for("both steps running on host-a", lambda: open(marks).read().count("start") == 2, seconds=90)
    other.start_backend(other.env)
    load_jobs(portal_db, tmp_path, count=2, sleep="20", spool="going-on")
    wait_for("host-b's steps running", lambda: open(marks).read().count("start") == 4, seconds=90)
    jobs_of = collections.defaultdict(list)
    for job_id, (worker, _) in running_on(cluster).items():
        jobs_of[worker.split(":")[0]].append(job_id)
    assert sorted(map(len, jobs_of.values())) == [2, 2], jobs_of

    cut.cut_off()  # host-a's link down: its processes and steps live on, unreachable
    cut_at = cluster.sql("SELECT now()")[0][0]
    try:
        zombies, early = watch_zombies(cluster, jobs_of["host-a"], seconds=60)
        still_running = len(step_processes(marks))  # the known limit: the cut host's steps run on, their jobs Zombie
        load_jobs(portal_db, tmp_path, count=4, sleep="0", spool="during")
        wait_for("the work of host-b going on", lambda: statuses(cluster)["OK"] == 6, seconds=90)
        actions_during = wait_for("summary actions during the cut", lambda: cluster.sql(
            "SELECT COUNT(*) FROM scheduling_tasktransition WHERE event = 'E_ActionDone' AND at > %s", (cut_at,))[0][0], seconds=60)
    finally:
        cut.reconnect()
    try:
        # Back: host-a's workers find their jobs taken over and stop the steps; host-a's processes run on by themselves.
        wait_for("no step left on host-a", lambda: not step_processes(marks), seconds=90)
        other.stop()
        load_jobs(portal_db, tmp_path, count=2, sleep="0", spool="after")
        wait_for("host-a running new jobs alone", lambda: statuses(cluster)["OK"] == 8, seconds=120)
        assert all(process.poll() is None for process in cut.processes), cut.log()
    finally:
        cut.stop()

    seen = marks_of(marks)
    assert all(events[0][0] == "start" and [e for e, _ in events].count("start") == 1 for events in seen.values()), seen
    ended = {f"{spool}/{g:06d}" for spool, count in (("going-on", 2), ("during", 4), ("after", 2)) for g in range(1, count + 1)}
    assert {g for g, events in seen.items() if events[-1][0] == "end"} == ended  # not cut/1, cut/2: stopped on host-a
    assert (zombies, early) == (2, 0)
    # The cut host's jobs: Zombie once their leases lapsed; when the link came back, its workers found them
    # taken over and stopped their steps, whose outcome (killed) then made them Error. Neither ran twice.
    assert statuses(cluster) - collections.Counter(OK=8) in ({"Zombie": 2}, {"Error": 2}, {"Zombie": 1, "Error": 1})
    assert all(host == "host-a" for g, events in seen.items() if g.startswith(("cut", "after")) for _, host in events)
    assert actions_during >= 1
    print(f"FIGURES host cut off: its 2 jobs Zombie (none before its lease lapsed), their steps still running while cut: "
          f"{still_running} processes; host-b's 2 steps and 4 new jobs OK, {actions_during} summary actions meanwhile; "
          f"after the link came back host-a stopped its steps and ran 2 new jobs alone; every step started once")
