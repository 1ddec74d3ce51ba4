"""Transactions and summary events (DOMAIN §2, issue 5) driven through the API and `heartbeat --once --now`."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from monitoring.summaries.models import Transaction
from portal.models import OutboundMessage
from portal.validation import schema_errors

pytestmark = pytest.mark.django_db

FEED = "/api/v1/transactions/"
TASKS = "/api/v1/scheduler-tasks/"


def heartbeat(at: str) -> None:
    call_command("heartbeat", "--once", "--now", at, stdout=io.StringIO())


def item(reference: str, **fields) -> dict:
    return {
        "interface": "PAYMENT_ORIGINATOR", "reference": reference, "amount": "10.00", "currency": "EUR",
        "status": "PENDING", "received_at": "2026-03-02T09:00:00Z", "completed_at": None,
    } | fields


@pytest.fixture
def feeder_api(feeder, api_client_for):
    return api_client_for(feeder)


@pytest.fixture
def admin_api(administrator, api_client_for):
    return api_client_for(administrator)


def summary_messages() -> list[dict]:
    return [m.payload for m in OutboundMessage.objects.filter(kind__startswith="FTM").order_by("id")]


def test_hosted_and_invoked_tasks_publish_their_events_on_the_heartbeat(feeder_api, admin_api, now):
    now("2026-03-02T10:00:00Z")
    hosted = admin_api.post(TASKS, {
        "name": "hosted", "subtype": "HOSTED_SERVICE_MONITOR", "interval_seconds": 600,
        "interfaces": ["PAYMENT_ORIGINATOR"], "enabled": True,
    }, format="json").json()
    admin_api.post(TASKS, {
        "name": "invoked", "subtype": "INVOKED_SERVICE_MONITOR", "interval_seconds": 600,
        "interfaces": ["LIQUIDITY_SERVICE"], "enabled": True,
    }, format="json")
    assert hosted["interfaces"] == ["PAYMENT_ORIGINATOR"]
    answer = feeder_api.post(FEED, [
        item("P1", received_at="2026-03-02T09:00:00Z"),  # pending all along
        item("P2", amount="5.5", received_at="2026-03-02T09:30:00Z", status="COMPLETED", completed_at="2026-03-02T10:05:00Z"),
        item("P3", received_at="2026-03-02T10:01:00Z", status="FAILED", completed_at="2026-03-02T10:02:00Z"),
        item("P4", currency="JPY", amount="1500", received_at="2026-03-02T10:09:59Z"),
        item("P5", received_at="2026-03-02T10:10:00Z"),  # received at the interval end: not yet there
        item("L1", interface="LIQUIDITY_SERVICE", currency="USD", amount="1", received_at="2026-03-02T08:00:00Z",
             status="COMPLETED", completed_at="2026-03-02T09:00:00Z"),  # finished before: all zero, left out
    ], format="json")
    assert answer.status_code == 201

    heartbeat("2026-03-02T10:10:00Z")

    messages = summary_messages()
    assert [(m["event"], m["interface"]) for m in messages] == [
        ("FTMHostedServiceBeginSummary", "PAYMENT_ORIGINATOR"),
        ("FTMHostedServiceEndSummary", "PAYMENT_ORIGINATOR"),
        ("FTMInvokedServiceSummary", "LIQUIDITY_SERVICE"),
    ]
    for message in messages:
        assert set(message) == {"event", "uuid", "task", "interface", "direction", "interval_start", "interval_end", "emitted_at", "totals"}
        assert (message["interval_start"], message["interval_end"]) == ("2026-03-02T10:00:00Z", "2026-03-02T10:10:00Z")
        assert message["emitted_at"] == "2026-03-02T10:10:00Z"
        assert schema_errors(message["event"], message) == []
    begin, end, invoked = messages
    assert (begin["task"], begin["direction"], begin["totals"]) == ("hosted", "HOSTED", [])
    assert end["totals"] == [
        {"currency": "EUR", "pending_count": 1, "pending_value": "10.00", "completed_count": 1, "completed_value": "5.50", "failed_count": 1},
        {"currency": "JPY", "pending_count": 1, "pending_value": "1500", "completed_count": 0, "completed_value": "0", "failed_count": 0},
    ]
    assert (invoked["direction"], invoked["totals"]) == ("INVOKED", [])
    keys = set(OutboundMessage.objects.filter(kind__startswith="FTM").values_list("dedupe_key", flat=True))
    assert "FTMHostedServiceEndSummary:hosted:PAYMENT_ORIGINATOR:2026-03-02T10:10:00Z" in keys

    heartbeat("2026-03-02T10:20:00Z")
    second_end = [m for m in summary_messages() if m["event"] == "FTMHostedServiceEndSummary"][-1]
    assert second_end["interval_start"] == "2026-03-02T10:10:00Z"
    assert second_end["totals"] == [
        {"currency": "EUR", "pending_count": 2, "pending_value": "20.00", "completed_count": 0, "completed_value": "0.00", "failed_count": 0},
        {"currency": "JPY", "pending_count": 1, "pending_value": "1500", "completed_count": 0, "completed_value": "0", "failed_count": 0},
    ]

    listed = admin_api.get("/api/v1/summaries/", {"task": "hosted", "interface": "PAYMENT_ORIGINATOR"}).json()["results"]
    assert len(listed) == 4
    window = admin_api.get("/api/v1/summaries/", {"since": "2026-03-02T10:15:00Z", "until": "2026-03-02T10:30:00Z"}).json()
    assert {row["interval_end"] for row in window["results"]} == {"2026-03-02T10:20:00Z"}


def test_the_local_backend_writes_the_summary_bodies_to_the_control_queue_file(feeder_api, admin_api, now, control_queue_file):
    now("2026-03-02T10:00:00Z")
    admin_api.post(TASKS, {
        "name": "invoked", "subtype": "INVOKED_SERVICE_MONITOR", "interval_seconds": 60,
        "interfaces": ["PAYMENTS_GATEWAY"], "enabled": True,
    }, format="json")
    heartbeat("2026-03-02T10:01:00Z")
    call_command("publish_outbox", stdout=io.StringIO())
    lines = [json.loads(line) for line in control_queue_file.read_text().splitlines()]
    assert [(line["event"], line["interface"], line["totals"]) for line in lines] == [
        ("FTMInvokedServiceSummary", "PAYMENTS_GATEWAY", [])
    ]


def test_a_feed_replayed_or_older_changes_nothing(feeder_api, now):
    now("2026-03-02T10:00:00Z")
    feed = [item("R1"), item("R2", status="COMPLETED", completed_at="2026-03-02T09:10:00Z")]
    assert [r["result"] for r in feeder_api.post(FEED, feed, format="json").json()] == ["created", "created"]
    replay = feeder_api.post(FEED, feed, format="json")
    assert replay.status_code == 200 and [r["result"] for r in replay.json()] == ["unchanged", "unchanged"]
    forward = feeder_api.post(FEED, item("R1", status="FAILED", completed_at="2026-03-02T09:20:00Z"), format="json")
    assert forward.json()["result"] == "updated"
    older = feeder_api.post(FEED, item("R1"), format="json")
    assert older.status_code == 200 and older.json()["result"] == "unchanged"
    assert Transaction.objects.get(reference="R1").status == "FAILED"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (item("X", amount="-1.00"), "amount"),
        (item("X", amount="ten"), "amount"),
        (item("X", currency="XYZ"), "currency"),
        (item("X", interface="NOWHERE"), "interface"),
        (item("X", status="COMPLETED", received_at="2026-03-02T10:00:00Z", completed_at="2026-03-02T09:59:59Z"), "completed_at"),
        (item("R1", amount="11.00"), "amount"),
        (item("R1", currency="USD"), "currency"),
        (item("R2", status="COMPLETED", completed_at="2026-03-02T09:30:00Z"), "status"),
    ],
)
def test_a_bad_item_refuses_the_whole_request_naming_the_item_and_field(feeder_api, now, bad, field):
    now("2026-03-02T10:00:00Z")
    feeder_api.post(FEED, [item("R1"), item("R2", status="FAILED", completed_at="2026-03-02T09:10:00Z")], format="json")
    before = list(Transaction.objects.values_list("reference", "status", "amount", "currency", "updated_at"))

    answer = feeder_api.post(FEED, [item("NEW-1"), bad], format="json")

    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert (error["index"], error["field"]) == (1, field)
    assert list(Transaction.objects.values_list("reference", "status", "amount", "currency", "updated_at")) == before
