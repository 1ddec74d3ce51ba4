"""The outbox under faults (DOMAIN §4): concurrent publishers, crashes, slow and dead queues, SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from portal import clock
from portal.backends import SendResult
from portal.backends.local import LocalQueue
from portal.models import MessageStatus, OutboundMessage
from portal.publisher import outbox_claim, outbox_publish, outbox_publish_all, outbox_record_results
from portal.services import outbox_enqueue
from tests.portal.payloads import control_message

ROOT = Path(settings.BASE_DIR)


def enqueue(count: int, prefix: str = "k") -> list[OutboundMessage]:
    return [
        outbox_enqueue(kind="control_message", dedupe_key=f"{prefix}{i}", payload=control_message(window_id=i + 1))
        for i in range(count)
    ]


class RecordingBackend:
    """Remembers every message it was handed, by publisher thread."""

    batch_limit = 10

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def send(self, messages):
        with self.lock:
            self.sent += [(threading.current_thread().name, m.id) for m in messages]
        return [SendResult(m.id, True, str(m.uuid)) for m in messages]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_publishers_at_once_never_send_a_message_twice(settings):
    settings.OUTBOX_BATCH_SIZE = 3  # many small claims: many chances to race for the same rows
    enqueue(300)
    backend = RecordingBackend()
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def publisher() -> None:
        try:
            start.wait(timeout=10)
            while OutboundMessage.objects.pending().exists():
                outbox_publish(backend=backend)
        except BaseException as exc:  # noqa: BLE001  - reported by the main thread
            failures.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=publisher, name=f"publisher-{i}") for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    per_message = Counter(message_id for _, message_id in backend.sent)
    assert len(per_message) == 300
    assert max(per_message.values()) == 1, "a message went out twice"
    assert {name for name, _ in backend.sent} == {"publisher-1", "publisher-2"}  # both really worked
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert set(OutboundMessage.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db
def test_a_crash_between_send_and_mark_is_taken_over_once_the_lease_has_passed_and_written_once(control_queue_file, now, settings):
    start = now("2026-03-02T10:00:00Z")
    enqueue(3)
    claim = outbox_claim(now=start, limit=10)
    LocalQueue().send(claim.messages[:2])  # ... and the publisher dies here, before marking them SENT
    lease = dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)

    now((start + lease - dt.timedelta(seconds=1)).isoformat())
    assert outbox_publish_all().sent == 0  # still leased to the dead publisher
    assert len(control_queue_file.read_text().splitlines()) == 2

    now((start + lease).isoformat())
    assert outbox_publish_all().sent == 0  # the lease ends after, not at, its last instant

    now((start + lease + dt.timedelta(seconds=1)).isoformat())
    assert outbox_publish_all().sent == 3  # nothing is lost ...
    lines = control_queue_file.read_text().splitlines()
    assert lines == [m.body for m in claim.messages]  # ... and the two lines the dead publisher wrote are not written again
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.SENT}


@pytest.mark.django_db
def test_a_line_torn_by_a_killed_writer_is_cut_and_written_again_whole(control_queue_file, now, settings):
    start = now("2026-03-02T10:00:00Z")
    enqueue(2)
    claim = outbox_claim(now=start, limit=10)
    first, second = claim.messages
    LocalQueue().send([first])
    with open(control_queue_file, "a") as handle:
        handle.write(second.body[:25])  # the publisher was killed in the middle of this line

    now((start + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS + 1)).isoformat())
    assert outbox_publish_all().sent == 2

    assert control_queue_file.read_text().splitlines() == [first.body, second.body]


@pytest.mark.django_db
def test_a_publisher_whose_lease_lapsed_does_not_overwrite_the_new_owner(now, settings):
    start = now("2026-03-02T10:00:00Z")
    (message,) = enqueue(1)
    slow = outbox_claim(now=start, limit=10)

    now((start + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS + 1)).isoformat())
    assert outbox_publish(backend=RecordingBackend()).sent == 1  # a second publisher takes it over
    outbox_record_results(claim=slow, results=[SendResult(message.id, False, error="timeout")], now=clock.now())

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (MessageStatus.SENT, 1, "")


class SlowQueue(RecordingBackend):
    """Each batch takes 40 s of real time (a monotonic clock the test moves)."""

    def __init__(self, monkeypatch) -> None:
        super().__init__()
        self.elapsed = 0.0
        monkeypatch.setattr("portal.publisher.time.monotonic", lambda: self.elapsed)

    def send(self, messages):
        self.elapsed += 40
        return super().send(messages)


@pytest.mark.django_db
def test_a_slow_queue_stops_sending_before_the_lease_runs_out(monkeypatch, settings, now):
    now("2026-03-02T10:00:00Z")
    settings.OUTBOX_LEASE_SECONDS = 120  # batches may start in the first 60 s only
    enqueue(40)
    backend = SlowQueue(monkeypatch)

    report = outbox_publish(backend=backend)

    assert report.sent == 20 and report.retrying == 0  # batches at 0 s and 40 s; not the one at 80 s
    untried = OutboundMessage.objects.filter(status=MessageStatus.PENDING)
    assert untried.count() == 20
    assert {(m.attempts, m.next_attempt_at) for m in untried} == {(0, clock.now())}
    assert outbox_publish_all(backend=RecordingBackend()).sent == 20  # released at once, no backoff


class DeadQueue:
    batch_limit = 10

    def __init__(self) -> None:
        self.calls = 0

    def send(self, messages):
        self.calls += 1
        raise ConnectionError("connect timeout")


@pytest.mark.django_db
def test_a_dead_queue_is_tried_once_per_round_and_every_message_backs_off(now):
    start = now("2026-03-02T10:00:00Z")
    enqueue(30)
    backend = DeadQueue()

    report = outbox_publish(backend=backend)

    assert backend.calls == 1  # not one timeout per batch of ten
    assert report.retrying == 30
    assert {(m.status, m.attempts) for m in OutboundMessage.objects.all()} == {(MessageStatus.PENDING, 1)}
    assert all(m.next_attempt_at > start for m in OutboundMessage.objects.all())
    assert all("connect timeout" in m.last_error for m in OutboundMessage.objects.all())


@pytest.mark.django_db
def test_the_local_line_is_exactly_the_body_sqs_receives(sqs_queue, sqs_receive, tmp_path):
    from portal.backends.sqs import SqsQueue

    url = sqs_queue("control")
    payload = control_message()
    payload["eventMessage"] = "Zürich ledger (acme): window 2026-03-02 00:00 to 2026-03-03 00:00 waits for «gl_lines»"
    (message,) = [outbox_enqueue(kind="control_message", dedupe_key="exact", payload=payload)]
    local = LocalQueue(tmp_path / "control-queue.jsonl")

    local.send([message])
    SqsQueue(url).send([message])

    (line,) = (tmp_path / "control-queue.jsonl").read_text(encoding="utf-8").splitlines()
    (received,) = sqs_receive(url)
    assert line == received["Body"]
    assert json.loads(line) == payload


@pytest.mark.django_db
def test_a_fifo_resend_after_a_crash_is_dropped_by_the_queue(sqs_queue, sqs_receive):
    from portal.backends.sqs import SqsQueue, deduplication_id

    url = sqs_queue("control", fifo=True)
    long_key = "cfg:1:win:1:OPEN:0 " + "x" * 200  # a space and 200+ characters: SQS would refuse it as is
    (message,) = [outbox_enqueue(kind="control_message", dedupe_key=long_key, payload=control_message())]
    queue = SqsQueue(url)

    assert [r.ok for r in queue.send([message])] == [True]
    assert [r.ok for r in queue.send([message])] == [True]  # the same message again, as after a crash

    (received,) = sqs_receive(url)
    assert received["Attributes"]["MessageGroupId"] == "control_message"
    assert received["Attributes"]["MessageDeduplicationId"] == deduplication_id(long_key)
    assert len(deduplication_id(long_key)) == 64


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_publish_outbox_loop_publishes_and_stops_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    env.update(DEBUG="1", PORTAL_DATA_DIR=str(tmp_path), CONTROL_QUEUE_BACKEND="local")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    loop = subprocess.Popen([*manage, "publish_outbox", "--loop"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        enqueue_script = (
            "from portal.services import outbox_enqueue; from tests.portal.payloads import control_message; "
            "outbox_enqueue(kind='control_message', dedupe_key='loop', payload=control_message())"
        )
        subprocess.run([*manage, "shell", "-c", enqueue_script], cwd=ROOT, env=env, check=True, timeout=60)
        queue_file = tmp_path / "control-queue.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (queue_file.exists() and queue_file.read_text()):
            assert loop.poll() is None, loop.stderr.read()
            time.sleep(0.1)
        assert len(queue_file.read_text().splitlines()) == 1  # the running loop picked it up
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=20) == 0
    finally:
        if loop.poll() is None:
            loop.kill()


class CountedStop:
    """Stops the loop after a number of waits; records them instead of sleeping."""

    def __init__(self, turns: int) -> None:
        self.turns = turns
        self.waits: list[float] = []

    @property
    def stopped(self) -> bool:
        return len(self.waits) >= self.turns

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.stopped


@pytest.mark.django_db
def test_the_publisher_loop_outlives_a_failing_turn(monkeypatch, control_queue_file):
    from portal import publisher

    enqueue(1)
    real = publisher.outbox_publish_all
    outcomes = iter([RuntimeError("database restarting"), None])

    def flaky(**kwargs):
        outcome = next(outcomes, None)
        if outcome is not None:
            raise outcome
        return real(**kwargs)

    monkeypatch.setattr(publisher, "outbox_publish_all", flaky)
    stop = CountedStop(turns=2)

    publisher.outbox_publish_loop(stop=stop)

    assert len(control_queue_file.read_text().splitlines()) == 1  # the turn after the failure sent it
    assert stop.waits == [settings.OUTBOX_POLL_SECONDS, settings.OUTBOX_POLL_SECONDS]
