"""Outbox order (DOMAIN §4): messages of one kind leave in the order written, also after an outage.

A batch that fails makes its whole lane wait: younger messages of that kind never
overtake older ones; nothing is lost, nothing duplicated, an INVALID message stays unsent.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter, defaultdict

import pytest

from portal import clock
from portal.models import MessageStatus, OutboundMessage, OutboxLane
from portal.publisher import outbox_publish, outbox_publish_all
from portal.services import outbox_enqueue
from tests.conftest import receive_all
from tests.portal.payloads import GAP, control_message, gap_message

pytestmark = pytest.mark.django_db


def sequence_of(body: str) -> tuple[str, int]:
    payload = json.loads(body)
    if "heartbeat" in payload:
        return GAP, payload["heartbeat"]["blind_seconds"]
    return "control_message", payload["btch_dtl"]["window_id"]


class Writer:
    """Writes numbered messages of two kinds, and one INVALID one that must never leave."""

    def __init__(self) -> None:
        self.written: dict[str, list[int]] = defaultdict(list)
        self.seq = 0

    def write(self, count: int) -> None:
        for _ in range(count):
            self.seq += 1
            outbox_enqueue(kind="control_message", dedupe_key=f"c{self.seq}", payload=control_message(window_id=self.seq))
            outbox_enqueue(kind=GAP, dedupe_key=f"g{self.seq}", payload=gap_message(self.seq))
            self.written["control_message"].append(self.seq)
            self.written[GAP].append(self.seq)
            if self.seq == 7:
                outbox_enqueue(kind="control_message", dedupe_key="invalid", payload={**control_message(), "eventMajor": "X"})


def step(seconds: float) -> None:
    clock.set_now(clock.now() + dt.timedelta(seconds=seconds))


def run_outage(*, take_down, bring_back, received) -> Writer:
    """Sent before, a 90 s outage with writes and failed turns all along, then back: every turn a second."""
    clock.set_now(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC))
    writer = Writer()
    writer.write(20)
    assert outbox_publish_all().sent == 40
    received()

    take_down()
    for _ in range(18):  # 90 s, a turn every 5 s: the lanes fail and wait, new messages queue behind
        writer.write(3)
        outbox_publish()
        step(5)
    assert OutboundMessage.objects.filter(status=MessageStatus.SENT).count() == 40
    assert OutboxLane.objects.filter(failures__gt=0).count() == 2

    bring_back()
    for second in range(400):
        if second % 10 == 0 and second < 200:
            writer.write(1)  # writes go on while the backlog drains
        outbox_publish()
        received()
        step(1)
    return writer


def assert_each_kind_left_in_order_once(writer: Writer, bodies: list[str]) -> None:
    arrived: dict[str, list[int]] = defaultdict(list)
    for body in bodies:
        kind, seq = sequence_of(body)
        arrived[kind].append(seq)
    for kind, written in writer.written.items():
        copies = Counter(arrived[kind])
        assert set(written) - set(copies) == set(), f"{kind}: lost"
        assert [seq for seq, n in copies.items() if n > 1] == [], f"{kind}: duplicated"
        assert arrived[kind] == written, f"{kind}: out of order"
    assert OutboundMessage.objects.get(dedupe_key="invalid").status == MessageStatus.INVALID
    assert not OutboundMessage.objects.filter(status=MessageStatus.PENDING).exists()


def test_sqs_down_for_a_while_then_back_loses_duplicates_and_reorders_nothing(sqs_server, sqs_queue):
    url = sqs_queue("control")
    bodies: list[str] = []

    def bring_back() -> None:
        sqs_server.start()  # same port, an empty queue of the same name
        sqs_queue("control")

    writer = run_outage(
        take_down=sqs_server.stop,
        bring_back=bring_back,
        received=lambda: bodies.extend(m["Body"] for m in receive_all(sqs_server, url)),
    )

    assert_each_kind_left_in_order_once(writer, bodies)


def test_local_queue_unwritable_for_a_while_then_back_loses_duplicates_and_reorders_nothing(control_queue_file):
    saved: list[str] = []

    def take_down() -> None:
        saved.extend(control_queue_file.read_text(encoding="utf-8").splitlines())
        control_queue_file.unlink()
        control_queue_file.mkdir()  # appending to it fails: IsADirectoryError

    def bring_back() -> None:
        shutil.rmtree(control_queue_file)

    writer = run_outage(take_down=take_down, bring_back=bring_back, received=lambda: None)

    saved.extend(control_queue_file.read_text(encoding="utf-8").splitlines())
    assert_each_kind_left_in_order_once(writer, saved)


class Down:
    def send(self, messages):
        raise ConnectionError("connection refused")


def test_a_failed_batch_holds_its_whole_lane_and_only_its_lane(control_queue_file, now):
    start = now("2026-03-02T10:00:00Z")
    outbox_enqueue(kind="control_message", dedupe_key="old", payload=control_message(window_id=1))
    outbox_publish(backend=Down())
    outbox_enqueue(kind="control_message", dedupe_key="young", payload=control_message(window_id=2))
    outbox_enqueue(kind=GAP, dedupe_key="gap", payload=gap_message(1))

    report = outbox_publish()

    assert report.sent == 1  # the other kind's lane is not held
    assert OutboundMessage.objects.get(dedupe_key="young").status == MessageStatus.PENDING  # never before "old"
    lane = OutboxLane.objects.get(name="control_message")
    assert (lane.failures, lane.next_attempt_at) == (1, start + dt.timedelta(seconds=2))

    now("2026-03-02T10:00:02Z")
    assert outbox_publish().sent == 2
    windows = [json.loads(line).get("btch_dtl", {}).get("window_id") for line in control_queue_file.read_text().splitlines()]
    assert windows == [None, 1, 2]
    assert OutboxLane.objects.get(name="control_message").failures == 0


def test_a_message_written_under_a_later_now_clock_is_sent_at_once_by_the_live_publisher(control_queue_file, now):
    now("2030-01-01T00:00:00Z")  # e.g. `heartbeat --once --now 2030-01-01T00:00:00Z`
    outbox_enqueue(kind="control_message", dedupe_key="replayed", payload=control_message())
    outbox_publish(backend=Down())  # ... and a publisher on that clock failed: its lane waits until 2030
    clock.set_now(None)

    assert outbox_publish_all().sent == 1  # the live clock: its first attempt (and the 2030 wait) delay nothing


def test_a_notification_waits_in_the_lane_of_its_receiver_other_kinds_in_their_kind():
    from portal.backends import lane_for

    assert lane_for("NOTIFICATION", {"channel_id": 3}) == "NOTIFICATION:3"
    assert lane_for("control_message", control_message()) == "control_message"


class RefusesOne:
    """The queue refuses one message itself (too large, say): retrying cannot help."""

    batch_limit = 10

    def __init__(self, refused: str) -> None:
        self.refused, self.sent = refused, []

    def send(self, messages):
        from portal.backends import SendResult

        self.sent += [m.dedupe_key for m in messages if m.dedupe_key != self.refused]
        return [SendResult(m.id, m.dedupe_key != self.refused, error="", permanent=m.dedupe_key == self.refused) for m in messages]


def test_a_message_the_queue_refuses_is_failed_and_holds_no_one_behind_it(now):
    now("2026-03-02T10:00:00Z")
    for i in range(1, 26):
        outbox_enqueue(kind="control_message", dedupe_key=f"m{i:02d}", payload=control_message(window_id=i))
    queue = RefusesOne("m05")

    report = outbox_publish(backend=queue)

    assert (report.sent, report.failed, report.retrying) == (24, 1, 0)
    assert queue.sent == [f"m{i:02d}" for i in range(1, 26) if i != 5]  # in order, all of them
    assert OutboundMessage.objects.get(dedupe_key="m05").status == MessageStatus.FAILED
    lane = OutboxLane.objects.get(name="control_message")
    assert (lane.failures, lane.next_attempt_at) == (0, None)


class FailsBatch:
    """Takes batches in order and fails the given one (a timeout, say): worth trying again later."""

    def __init__(self, failing: int) -> None:
        self.failing, self.batches = failing, []

    def send(self, messages):
        from portal.backends import SendResult

        self.batches.append([m.dedupe_key for m in messages])
        ok = len(self.batches) != self.failing
        return [SendResult(m.id, ok, error="" if ok else "timeout") for m in messages]


def test_a_held_lane_sends_batch_after_batch_in_order_then_is_released(settings, now):
    now("2026-03-02T10:00:00Z")
    settings.OUTBOX_BATCH_SIZE = 2
    for i in range(1, 6):
        outbox_enqueue(kind="control_message", dedupe_key=f"m{i}", payload=control_message(window_id=i))
    queue = FailsBatch(failing=0)

    report = outbox_publish(backend=queue, hold_seconds=60)

    assert report.sent == 5
    assert queue.batches == [["m1", "m2"], ["m3", "m4"], ["m5"]]  # one turn, the lane held throughout
    lane = OutboxLane.objects.get(name="control_message")
    assert (lane.claim_token, lane.lease_until) == (None, None)


def test_a_held_lane_stops_at_its_first_failed_batch_and_waits_as_a_whole(settings, now):
    start = now("2026-03-02T10:00:00Z")
    settings.OUTBOX_BATCH_SIZE = 2
    for i in range(1, 6):
        outbox_enqueue(kind="control_message", dedupe_key=f"m{i}", payload=control_message(window_id=i))
    queue = FailsBatch(failing=2)

    report = outbox_publish(backend=queue, hold_seconds=60)

    assert (report.sent, report.retrying) == (2, 2)
    assert queue.batches == [["m1", "m2"], ["m3", "m4"]]  # nothing younger tried after the failure
    pending = OutboundMessage.objects.filter(status=MessageStatus.PENDING).order_by("id")
    assert [m.dedupe_key for m in pending] == ["m3", "m4", "m5"]
    lane = OutboxLane.objects.get(name="control_message")
    assert (lane.claim_token, lane.failures, lane.next_attempt_at) == (None, 1, start + dt.timedelta(seconds=2))
