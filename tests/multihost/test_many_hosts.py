"""DOMAIN §9: any number of each process on several hosts make one portal. Each host here is a network,
PID and UTS namespace of this machine with its own host name, sharing one PostgreSQL and one Redis:
no job step, scheduler action or message runs or goes out twice."""

from __future__ import annotations

import collections
import json

import pytest

from tests.multihost.conftest import write_script
from tests.multihost.harness import manage, wait_for

pytestmark = pytest.mark.slow

JOBS = 60
MARK = """#!/bin/sh
# Arguments: the marks file, the generation, seconds to sleep. Start and end each leave a line.
echo "start $2 $(hostname) $$" >> "$1"
sleep "$3"
echo "end $2 $(hostname) $$" >> "$1"
"""


def load_jobs(env: dict, tmp_path, *, count: int, sleep: str) -> str:
    """A spool whose single step marks its start and end, and ``count`` jobs due now."""
    marks = tmp_path / "marks.txt"
    marks.touch()
    script = write_script(tmp_path / "mark.sh", MARK)
    workflow = tmp_path / "multi.ini"
    workflow.write_text(f"[1]\ntext=Mark\ncommand={script} {marks} <Generation> {sleep}\n")
    manage(env, "shell", code=f"""
        from scheduling.workflows.services import job_add, job_start, workflow_load
        spool = workflow_load(spool_name="multi", path={str(workflow)!r}, actor="test").spool
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
    assert len(received) == len(set(received)) == len(sent) > 0
