"""The outbox under real faults (DOMAIN §4, §9): the publisher killed with -9 in the middle of a stream, and
the SQS endpoint down for a minute under every Procfile process. What arrives is counted on the receiving
side, by each message's uuid, against the outbox's own order (its ids, per kind): lost 0, duplicated 0,
out of order 0, and every process back by itself.

The queue is FIFO (a group per kind, the dedupe key as deduplication id), as in production: a batch handed
over but not marked SENT before a kill goes again once the lane's lease has passed, and the queue drops the
copy. The local backend drops it itself: the publisher that takes the lane over skips the lines the file
already has. The figures are in docs/operations.md ("The outbox")."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass

import pytest

from tests.conftest import MotoServer, free_port, receive_all
from tests.faults.conftest import marks_of, ran_once_each, wait
from tests.multihost.harness import _port_open

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MESSAGES = 300  # written by the writers, half of each kind (control_message, HEARTBEAT_GAP)
# How long the SQS endpoint stays down: DOMAIN's minute.
OUTAGE_SECONDS = 60
# The lanes' longest wait after failed batches: the backlog leaves within seconds of the endpoint's return.
BACKOFF_MAX_SECONDS = 8
LEASE_SECONDS = 30  # OUTBOX_LEASE_SECONDS, its smallest value: how long a killed publisher's lane stays held
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def writer(count: int, *, prefix: str, pause: float) -> str:
    """Code of a writer process: ``count`` messages, the two kinds in turn, each in a transaction of its own."""
    return f"""
        import time
        from portal.services import outbox_enqueue
        from tests.portal.payloads import GAP, control_message, gap_message
        for seq in range(1, {count // 2} + 1):
            outbox_enqueue(kind="control_message", dedupe_key=f"{prefix}c{{seq}}", payload=control_message(window_id=seq))
            outbox_enqueue(kind=GAP, dedupe_key=f"{prefix}g{{seq}}", payload=gap_message(seq))
            time.sleep({pause})
    """


@dataclass
class Relay:
    """The SQS endpoint the portal talks to: a TCP relay (socat) in front of moto's server.

    Killing the relay takes the endpoint down (connections cut, then refused) while moto keeps what it
    accepted, as SQS does through an outage; moto's own process would forget its queues when stopped,
    and a message it had taken just before would be counted lost by the test, not by the portal.
    """

    target: int
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork", f"TCP:127.0.0.1:{self.target}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait("the relay", lambda: _port_open("127.0.0.1", self.port), seconds=10, every=0.05)

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the listener and every connection it relays
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def relay(moto):
    if shutil.which("socat") is None and not os.environ.get("CI"):
        pytest.skip("needs socat for the SQS endpoint that goes down (apt-get install socat; .ci/run installs it)")
    relay = Relay(target=moto.port, port=free_port())
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture
def fifo_queue(moto, monkeypatch) -> str:
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    import boto3

    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.url)
    name = f"control-{os.urandom(4).hex()}.fifo"
    return client.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]


def use_sqs(portal, queue_url: str, endpoint: str) -> None:
    path = queue_url.split("/", 3)[3]
    portal.env.update(AWS, CONTROL_QUEUE_BACKEND="sqs", CONTROL_QUEUE_URL=f"{endpoint}/{path}", AWS_ENDPOINT_URL=endpoint)


def outbox_order(portal) -> dict[str, list[str]]:
    """kind -> the uuids of its sendable messages in the order they were written."""
    written = defaultdict(list)
    for kind, uuid in portal.sql(
        "SELECT kind, payload->>'uuid' FROM portal_outboundmessage WHERE kind <> 'NOTIFICATION' AND status <> 'INVALID' ORDER BY id"
    ):
        written[kind].append(uuid)
    return written


def tally(written: dict[str, list[str]], arrived: list[str]) -> dict[str, int]:
    """Lost, duplicated and out of order (arrived after a younger message of its kind), and what came from nowhere."""
    kind_of = {uuid: kind for kind, uuids in written.items() for uuid in uuids}
    by_kind = defaultdict(list)
    for uuid in arrived:
        by_kind[kind_of.get(uuid)].append(uuid)
    counts = {"lost": 0, "duplicated": 0, "out of order": 0, "unknown": len(by_kind.pop(None, []))}
    for kind, uuids in written.items():
        got = by_kind[kind]
        counts["lost"] += len(set(uuids) - set(got))
        counts["duplicated"] += len(got) - len(set(got))
        position = {uuid: i for i, uuid in enumerate(uuids)}
        youngest = -1
        for uuid in got:
            counts["out of order"] += position[uuid] < youngest
            youngest = max(youngest, position[uuid])
    return counts


def uuids_of_lines(path) -> list[str]:
    import json

    return [json.loads(line)["uuid"] for line in path.read_text().splitlines()] if path.exists() else []


def uuids_of_queue(moto, queue_url: str) -> list[str]:
    import json

    return [json.loads(m["Body"])["uuid"] for m in receive_all(moto, queue_url)]


def queued(moto, queue_url: str) -> int:
    import boto3

    attributes = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.url).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def sent(portal) -> int:
    return portal.sql("SELECT COUNT(*) FROM portal_outboundmessage WHERE status = 'SENT'")[0][0]


def outbox_locked_with_messages_pending(portal, seconds: float = 60):
    """A connection holding a SHARE lock on the outbox while messages are pending, so the publisher's
    next batch is handed over and then waits to be marked. The writer waits on the lock too: taken at
    an instant the publisher had caught up, nothing would ever be handed over; so try again until not."""
    deadline = time.monotonic() + seconds
    lock = portal.cluster.connect()
    while True:
        with lock.cursor() as cursor:
            cursor.execute("LOCK TABLE portal_outboundmessage IN SHARE MODE")
            cursor.execute("SELECT COUNT(*) FROM portal_outboundmessage WHERE status = 'PENDING'")
            if cursor.fetchone()[0]:
                return lock
        lock.rollback()
        if time.monotonic() > deadline:
            lock.close()
            raise AssertionError(f"no message pending in {seconds} s: the stream ended before the kill")
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["sqs-fifo", "local"])
def test_kill_9_of_the_publisher_between_hand_over_and_mark_loses_and_duplicates_nothing(backend, portal, request):
    if backend == "sqs-fifo":
        moto, queue_url = request.getfixturevalue("moto"), request.getfixturevalue("fifo_queue")
        use_sqs(portal, queue_url, moto.url)
        handed_over = lambda: queued(moto, queue_url)  # noqa: E731  - nobody receives before the end
    else:
        lines = portal.data_dir / "control-queue.jsonl"
        handed_over = lambda: len(uuids_of_lines(lines))  # noqa: E731
    portal.env.update(OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS), OUTBOX_POLL_SECONDS="1")
    portal.start_code("writer", writer(MESSAGES, prefix="w", pause=0.03))
    portal.start("publisher")
    wait("a first part of the stream sent", lambda: sent(portal) >= 60, seconds=60)

    # The worst instant for a kill: a batch handed over, not yet marked. A SHARE lock on the outbox holds
    # the publisher's marking (and the writer) for as long as it takes to kill it there.
    lock = outbox_locked_with_messages_pending(portal)
    try:
        marked = sent(portal)
        wait("a batch handed over and not marked", lambda: handed_over() > marked, seconds=30, every=0.05)
        time.sleep(0.5)  # the whole batch
        portal.kill9("publisher")
        unmarked = handed_over() - marked
    finally:
        lock.rollback()
        lock.close()

    wait("the writer done", lambda: portal.processes["writer"].poll() is not None, seconds=60)
    assert portal.processes["writer"].returncode == 0, portal.log()
    portal.start("publisher")
    began = time.monotonic()
    wait("every message sent", lambda: sent(portal) == MESSAGES, seconds=LEASE_SECONDS + 60)
    resumed_after = time.monotonic() - began
    time.sleep(2)  # a few more turns: nothing more may leave

    written = outbox_order(portal)
    arrived = uuids_of_queue(moto, queue_url) if backend == "sqs-fifo" else uuids_of_lines(lines)
    counts = tally(written, arrived)
    assert sum(len(uuids) for uuids in written.values()) == MESSAGES
    assert counts == {"lost": 0, "duplicated": 0, "out of order": 0, "unknown": 0}, counts
    assert portal.sql("SELECT COUNT(*) FROM portal_outboxlane WHERE claim_token IS NOT NULL OR failures > 0") == [(0,)]
    print(f"FIGURES kill -9 of the publisher ({backend}), {MESSAGES} messages: {unmarked} handed over and not marked at the kill, "
          f"all sent {resumed_after:.0f} s after the restart (lease {LEASE_SECONDS} s); {counts}")


def test_the_sqs_endpoint_down_for_a_minute_under_every_process_loses_duplicates_and_reorders_nothing(
    portal, moto, relay, fifo_queue, tmp_path,
):
    use_sqs(portal, fifo_queue, relay.url)
    portal.env.update(OUTBOX_BACKOFF_MAX_SECONDS=str(BACKOFF_MAX_SECONDS), OUTBOX_POLL_SECONDS="1", Q_WORKERS="2")
    marks, marker = tmp_path / "marks.txt", f"faultmark{os.getpid()}p"
    portal.load_jobs("beside", count=20, seconds=0.5, marks=marks, marker=marker)
    portal.manage("shell", code="""
        from monitoring.summaries.models import MonitoredInterface
        from scheduling.scheduler.services import scheduler_task_create
        scheduler_task_create(actor="test", name="hosted", subtype="HOSTED_SERVICE_MONITOR", interval_seconds=10,
                              interfaces=list(MonitoredInterface.objects.filter(code="PAYMENT_ORIGINATOR")))
    """)
    portal.start("worker", "dispatcher", "clock", "publisher")
    portal.start_code("writer-before", writer(40, prefix="b", pause=0.05))
    wait("the first messages sent", lambda: sent(portal) >= 40, seconds=90)

    relay.stop()  # the endpoint goes away; the writers write on
    down_at = portal.sql("SELECT now()")[0][0]
    portal.start_code("writer-1", writer(MESSAGES // 2, prefix="x", pause=0.3))
    portal.start_code("writer-2", writer(MESSAGES // 2, prefix="y", pause=0.3))
    time.sleep(OUTAGE_SECONDS)
    in_flight = portal.sql("SELECT COUNT(*) FROM portal_outboundmessage WHERE status = 'PENDING' AND kind <> 'NOTIFICATION'")[0][0]
    felt = portal.sql("SELECT COUNT(*) FROM portal_outboundmessage WHERE attempts > 0 AND status = 'PENDING'")[0][0]
    relay.start()  # back on the same port
    back_at = portal.sql("SELECT now()")[0][0]

    for name in ("writer-before", "writer-1", "writer-2"):
        wait(f"{name} done", lambda name=name: portal.processes[name].poll() is not None, seconds=60)
        assert portal.processes[name].returncode == 0, portal.log()
    wait("nothing left to send", lambda: not portal.sql(
        "SELECT 1 FROM portal_outboundmessage WHERE status = 'PENDING' AND kind <> 'NOTIFICATION' LIMIT 1"), seconds=120)
    drained_after = (portal.sql("SELECT now()")[0][0] - back_at).total_seconds()
    wait("every job OK", lambda: portal.statuses()["OK"] == 20, seconds=60)

    assert in_flight >= MESSAGES and felt > 0  # the writers' messages waited out the outage, and the lanes had tried
    # Every process recovered by itself: up, the lanes well, the clock ticking and the dispatcher seen since.
    for name in ("worker", "dispatcher", "clock", "publisher"):
        assert portal.alive(name), portal.log()
    assert portal.sql("SELECT COUNT(*) FROM portal_outboxlane WHERE failures > 0 OR next_attempt_at > now()") == [(0,)]
    wait("the clock ticking", lambda: portal.sql("SELECT last_tick_at > %s FROM portal_heartbeat", (back_at,)) == [(True,)], seconds=20)
    wait("the dispatcher seen", lambda: portal.sql(
        "SELECT dispatcher_seen_at > %s FROM scheduling_schedulercontrol", (back_at,)) == [(True,)], seconds=20)
    seen = marks_of(marks)
    assert len(seen) == 20 and ran_once_each(seen), seen

    portal.stop()  # the clock writes summaries on: what it wrote last is sent once, then everything is counted
    portal.manage("publish_outbox")
    written = outbox_order(portal)
    counts = tally(written, uuids_of_queue(moto, fifo_queue))
    assert counts == {"lost": 0, "duplicated": 0, "out of order": 0, "unknown": 0}, counts
    assert portal.sql("SELECT status, COUNT(*) FROM portal_outboundmessage WHERE kind <> 'NOTIFICATION' GROUP BY status") == [
        ("SENT", sum(len(uuids) for uuids in written.values()))]
    kinds = {kind: len(uuids) for kind, uuids in written.items()}
    print(f"FIGURES SQS endpoint down {(back_at - down_at).total_seconds():.0f} s: {in_flight} messages pending at its return "
          f"({kinds} in all), all sent {drained_after:.1f} s after; {counts}; 20 jobs each once; every process up")
