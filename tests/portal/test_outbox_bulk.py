"""The bulk outbox: the same contract as outbox_enqueue, for thousands of messages at once."""

from __future__ import annotations

import copy

import pytest

from portal.models import MessageStatus, OutboundMessage
from portal.services import PendingMessage, outbox_enqueue, outbox_enqueue_bulk
from portal.validation import compiled_validator, known_kinds, schema_errors, validator_for
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db


def mutated(path: tuple, value) -> dict:
    payload = copy.deepcopy(control_message())
    node = payload
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return payload


BROKEN = [
    mutated(("uuid",), "not-a-uuid"),
    mutated(("eventMajor",), "OTHER"),
    mutated(("exceptionFlag",), "N"),  # OPEN is an exception
    mutated(("retryCount",), -1),
    mutated(("version",), 1),
    mutated(("extractStartTimeStamp",), "2026-03-02T00:00:00Z"),
    mutated(("btch_dtl", "tenant"), KeyError),
    mutated(("btch_dtl", "state"), "LATE"),
    mutated(("btch_dtl", "window_start"), "2026-03-02 00:00:00"),
    mutated(("btch_dtl", "extra"), 1),
    mutated(("subEntity",), {"workflow": "x", "more": 1}),
    {**control_message("COMPLETED"), "exceptionArgument": "gl_lines"},
]


@pytest.mark.parametrize("payload", BROKEN)
def test_compiled_validator_rejects_what_the_reference_rejects(payload):
    assert list(validator_for("control_message").iter_errors(payload)) != []
    assert not compiled_validator("control_message").is_valid(payload)
    assert schema_errors("control_message", payload) != []


@pytest.mark.parametrize("state", ["OPEN", "DELAYED", "RECOVERED", "COMPLETED", "DUPLICATE", "PREVIOUS_WINDOW", "FUTURE_WINDOW"])
def test_compiled_validator_accepts_what_the_reference_accepts(state):
    payload = control_message(state)
    assert schema_errors("control_message", payload) == []
    assert compiled_validator("control_message").is_valid(payload)


def test_bulk_keeps_invalid_messages_with_the_reference_reasons(now):
    now("2026-03-02T12:00:00Z")
    bad = mutated(("btch_dtl", "tenant"), KeyError)

    outbox_enqueue_bulk(messages=[PendingMessage("control_message", "bad", bad), PendingMessage("control_message", "good", control_message())])
    single = outbox_enqueue(kind="control_message", dedupe_key="bad-single", payload=bad)

    stored = {m.dedupe_key: m for m in OutboundMessage.objects.all()}
    assert stored["good"].status == MessageStatus.PENDING and stored["good"].last_error == ""
    assert stored["bad"].status == MessageStatus.INVALID
    assert stored["bad"].last_error == single.last_error


def test_bulk_skips_keys_already_stored_or_repeated(now):
    now("2026-03-02T12:00:00Z")
    first = outbox_enqueue(kind="control_message", dedupe_key="k1", payload=control_message())

    added = outbox_enqueue_bulk(
        messages=[PendingMessage("control_message", k, control_message()) for k in ("k1", "k2", "k2", "k3")]
    )

    assert added == 2
    assert sorted(OutboundMessage.objects.values_list("dedupe_key", flat=True)) == ["k1", "k2", "k3"]
    assert OutboundMessage.objects.get(dedupe_key="k1").payload == first.payload


@pytest.mark.parametrize("kind", known_kinds())
def test_every_message_kind_compiles_for_the_fast_check(kind):
    assert compiled_validator(kind).is_valid({}) is False  # every schema requires fields


def test_invalid_payload_is_worded_by_the_reference_validator():
    bad = mutated(("btch_dtl", "tenant"), KeyError)

    assert schema_errors("control_message", bad) == ["btch_dtl: 'tenant' is a required property"]
