from __future__ import annotations

import datetime as dt
import json

import pytest

from portal.models import AuditEntry, MessageStatus, OutboundMessage
from portal.publisher import outbox_publish, outbox_publish_all
from portal.services import outbox_enqueue, outbox_retry
from portal.validation import schema_errors
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db


def test_same_dedupe_key_twice_is_one_message():
    first = outbox_enqueue(kind="control_message", dedupe_key="cfg:1:win:1:OPEN:0", payload=control_message())
    second = outbox_enqueue(kind="control_message", dedupe_key="cfg:1:win:1:OPEN:0", payload=control_message())
    assert second.id == first.id
    assert second.payload["uuid"] == first.payload["uuid"]
    assert OutboundMessage.objects.count() == 1


def test_invalid_payload_is_kept_invalid_and_never_sent(control_queue_file):
    bad = control_message()
    del bad["btch_dtl"]["tenant"]
    bad["eventMajor"] = "SOMETHING"
    message = outbox_enqueue(kind="control_message", dedupe_key="bad", payload=bad)
    assert message.status == MessageStatus.INVALID
    assert "btch_dtl: 'tenant' is a required property" in message.last_error
    assert "eventMajor" in message.last_error

    report = outbox_publish_all()

    assert report.sent == 0
    assert not control_queue_file.exists()
    message.refresh_from_db()
    assert message.status == MessageStatus.INVALID and message.attempts == 0


def test_unknown_kind_is_refused():
    with pytest.raises(LookupError, match="no JSON Schema file for message kind 'nonsense'"):
        outbox_enqueue(kind="nonsense", dedupe_key="x", payload={})
    assert OutboundMessage.objects.count() == 0


def test_local_backend_writes_one_valid_json_line_per_message(control_queue_file):
    payloads = [control_message(window_id=i) for i in range(1, 4)]
    for i, payload in enumerate(payloads, start=1):
        outbox_enqueue(kind="control_message", dedupe_key=f"k{i}", payload=payload)

    report = outbox_publish_all()

    assert report.sent == 3
    lines = control_queue_file.read_text().splitlines()
    assert [json.loads(line) for line in lines] == payloads  # the body itself, no envelope, oldest first
    assert all(schema_errors("control_message", json.loads(line)) == [] for line in lines)
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.SENT}


def test_published_message_is_not_sent_twice(control_queue_file):
    outbox_enqueue(kind="control_message", dedupe_key="once", payload=control_message())
    outbox_publish_all()
    outbox_publish_all()
    assert len(control_queue_file.read_text().splitlines()) == 1


def test_publisher_sends_in_batches_in_the_order_written(control_queue_file, settings, now):
    settings.OUTBOX_BATCH_SIZE = 2
    start = now("2026-03-02T10:00:00Z")
    for i in range(5):
        with_time = start + dt.timedelta(seconds=10 - i)  # a replay's clock: stamped in reverse order of writing
        message = outbox_enqueue(kind="control_message", dedupe_key=f"k{i}", payload=control_message(window_id=i + 1))
        OutboundMessage.objects.filter(id=message.id).update(created_at=with_time)

    first = outbox_publish()

    assert first.sent == 2
    sent = [json.loads(line)["btch_dtl"]["window_id"] for line in control_queue_file.read_text().splitlines()]
    assert sent == [1, 2]


class ExplodingBackend:
    def send(self, messages):
        raise ConnectionError("queue unreachable")


def test_failed_send_backs_off_exponentially_and_keeps_the_message(now):
    now("2026-03-02T10:00:00Z")
    message = outbox_enqueue(kind="control_message", dedupe_key="k", payload=control_message())
    gaps = []
    for _ in range(4):
        attempt_at = now(message.next_attempt_at.isoformat())
        outbox_publish(backend=ExplodingBackend())
        message.refresh_from_db()
        gaps.append((message.next_attempt_at - attempt_at).total_seconds())
        assert outbox_publish(backend=ExplodingBackend()).handled == 0  # not due again before its time
    assert gaps == [2, 4, 8, 16]
    assert message.status == MessageStatus.PENDING
    assert message.attempts == 4
    assert "queue unreachable" in message.last_error


def test_publish_again_requeues_failed_messages(administrator, control_queue_file):
    message = outbox_enqueue(kind="control_message", dedupe_key="k", payload=control_message())
    OutboundMessage.objects.filter(id=message.id).update(status=MessageStatus.FAILED, last_error="refused")

    assert outbox_retry(messages=OutboundMessage.objects.all(), actor=administrator) == 1
    assert outbox_publish_all().sent == 1
    entry = AuditEntry.objects.get(action="outbox.publish_again")
    assert entry.actor_name == "administrator" and entry.before == {"status": "FAILED"}
