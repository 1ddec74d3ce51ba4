"""The sqs backend against moto's SQS-compatible server, in its own process on loopback."""

from __future__ import annotations

import json

import pytest

from portal import clock
from portal.models import MessageStatus, OutboundMessage
from portal.publisher import outbox_publish_all
from portal.services import outbox_enqueue
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db


def enqueue(count: int) -> list[dict]:
    payloads = [control_message(window_id=i) for i in range(1, count + 1)]
    for i, payload in enumerate(payloads, start=1):
        outbox_enqueue(kind="control_message", dedupe_key=f"cfg:1:win:{i}:OPEN:0", payload=payload)
    return payloads


def test_messages_arrive_once_each(sqs_queue, sqs_receive):
    url = sqs_queue("control")
    payloads = enqueue(23)  # more than two send_message_batch calls of ten

    assert outbox_publish_all().sent == 23
    assert outbox_publish_all().sent == 0

    bodies = [json.loads(m["Body"]) for m in sqs_receive(url)]
    assert sorted(b["uuid"] for b in bodies) == sorted(p["uuid"] for p in payloads)
    sent = OutboundMessage.objects.all()
    assert {m.status for m in sent} == {MessageStatus.SENT}
    assert all(m.queue_message_id for m in sent)


def test_fifo_queue_gets_group_and_deduplication_ids(sqs_queue, sqs_receive):
    url = sqs_queue("control", fifo=True)
    enqueue(3)

    assert outbox_publish_all().sent == 3

    received = sqs_receive(url)
    assert len(received) == 3
    attributes = [m["Attributes"] for m in received]
    assert {a["MessageGroupId"] for a in attributes} == {"control_message"}
    assert sorted(a["MessageDeduplicationId"] for a in attributes) == [f"cfg:1:win:{i}:OPEN:0" for i in (1, 2, 3)]


def test_queue_down_keeps_messages_pending_then_delivers_all_once(sqs_server, sqs_queue, sqs_receive, now):
    url = sqs_queue("control")
    now("2026-03-02T10:00:00Z")
    sqs_server.stop()
    payloads = enqueue(12)

    retries = []
    for _ in range(3):
        report = outbox_publish_all()
        assert report.sent == 0 and report.retrying == 12
        pending = OutboundMessage.objects.all()
        assert {m.status for m in pending} == {MessageStatus.PENDING}
        retries.append(max(m.next_attempt_at for m in pending))
        clock.set_now(retries[-1])
    assert retries[0] < retries[1] < retries[2]
    assert (retries[2] - retries[1]) > (retries[1] - retries[0])  # the wait grows

    sqs_server.start()  # same port; the queue is new and empty
    sqs_queue("control")
    assert outbox_publish_all().sent == 12

    bodies = [json.loads(m["Body"]) for m in sqs_receive(url)]
    assert sorted(b["uuid"] for b in bodies) == sorted(p["uuid"] for p in payloads)
    assert {m.status for m in OutboundMessage.objects.all()} == {MessageStatus.SENT}
