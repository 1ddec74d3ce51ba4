"""The summary events: which go out, their shape, their dedupe, where they are shown."""

from __future__ import annotations

import json
import logging

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.module_loading import import_string

from monitoring.summaries.emit import summary_dedupe_key
from monitoring.summaries.models import MonitoredInterface, ServiceSummary
from monitoring.summaries.selectors import interface_latest_figures
from monitoring.summaries.services import transactions_feed
from monitoring.summaries.tasks import hosted_summary_action, invoked_summary_action
from portal.clock import parse_instant
from portal.models import MessageStatus, OutboundMessage
from portal.publisher import outbox_publish_all
from portal.validation import schema_errors
from tests.monitoring.conftest import HOSTED, INVOKED, transaction_item

pytestmark = pytest.mark.django_db

START, END = "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"
FEED = [
    transaction_item("H-1", received_at="2026-03-02T09:00:00Z"),
    transaction_item("H-2", received_at="2026-03-02T09:00:00Z", status="COMPLETED", completed_at="2026-03-02T10:30:00Z",
                     currency="JPY", amount="1500"),
    transaction_item("H-3", received_at="2026-03-02T09:00:00Z", status="FAILED", completed_at="2026-03-02T10:40:00Z",
                     currency="BHD", amount="2.500"),
    transaction_item("I-1", interface="LIQUIDITY_SERVICE", received_at="2026-03-02T10:05:00Z", currency="USD", amount="12.34"),
]


def kinds_in_outbox() -> list[tuple[str, str]]:
    return [(m.kind, m.payload["interface"]) for m in OutboundMessage.objects.order_by("id")]


def test_the_scheduler_finds_both_actions_by_subtype():
    assert import_string(settings.SCHEDULER_ACTIONS["HOSTED_SERVICE_MONITOR"]) is hosted_summary_action
    assert import_string(settings.SCHEDULER_ACTIONS["INVOKED_SERVICE_MONITOR"]) is invoked_summary_action


def test_hosted_interfaces_get_a_begin_then_an_end_summary(task_run, now):
    transactions_feed(items=FEED)
    now(END)

    hosted_summary_action(task_run(START, END, HOSTED, name="hosted-hourly"))

    assert kinds_in_outbox() == [
        ("FTMHostedServiceBeginSummary", "BATCH_PAYMENT_ORIGINATOR"),
        ("FTMHostedServiceBeginSummary", "PAYMENT_ORIGINATOR"),
        ("FTMHostedServiceEndSummary", "BATCH_PAYMENT_ORIGINATOR"),
        ("FTMHostedServiceEndSummary", "PAYMENT_ORIGINATOR"),
    ]
    end = OutboundMessage.objects.get(kind="FTMHostedServiceEndSummary", payload__interface="PAYMENT_ORIGINATOR").payload
    assert {k: v for k, v in end.items() if k not in ("uuid", "totals")} == {
        "event": "FTMHostedServiceEndSummary",
        "task": "hosted-hourly",
        "interface": "PAYMENT_ORIGINATOR",
        "direction": "HOSTED",
        "interval_start": START,
        "interval_end": END,
        "emitted_at": END,
    }
    assert [row["currency"] for row in end["totals"]] == ["BHD", "EUR", "JPY"]
    begin = OutboundMessage.objects.get(kind="FTMHostedServiceBeginSummary", payload__interface="PAYMENT_ORIGINATOR").payload
    assert begin["totals"] == [] and begin["uuid"] != end["uuid"]


def test_invoked_interfaces_get_one_summary_each(task_run, now):
    transactions_feed(items=FEED)
    now(END)

    invoked_summary_action(task_run(START, END, INVOKED))

    assert kinds_in_outbox() == [
        ("FTMInvokedServiceSummary", "LIQUIDITY_SERVICE"),
        ("FTMInvokedServiceSummary", "PAYMENTS_GATEWAY"),
        ("FTMInvokedServiceSummary", "REPAIR_SERVICE"),
    ]
    liquidity = OutboundMessage.objects.get(payload__interface="LIQUIDITY_SERVICE").payload
    assert liquidity["direction"] == "INVOKED"
    assert liquidity["totals"] == [
        {"currency": "USD", "pending_count": 1, "pending_value": "12.34", "completed_count": 0, "completed_value": "0.00", "failed_count": 0}
    ]
    assert OutboundMessage.objects.get(payload__interface="PAYMENTS_GATEWAY").payload["totals"] == []


def test_every_message_validates_against_its_schema(task_run, now):
    transactions_feed(items=FEED)
    now(END)
    hosted_summary_action(task_run(START, END, HOSTED))
    invoked_summary_action(task_run(START, END, INVOKED))

    messages = list(OutboundMessage.objects.all())
    assert {m.kind for m in messages} == {
        "FTMHostedServiceBeginSummary", "FTMHostedServiceEndSummary", "FTMInvokedServiceSummary"
    }
    for message in messages:
        assert schema_errors(message.kind, message.payload) == []
        assert message.status == MessageStatus.PENDING


def test_the_schemas_refuse_a_malformed_summary(task_run, now):
    transactions_feed(items=FEED)
    now(END)
    hosted_summary_action(task_run(START, END, HOSTED))
    end = OutboundMessage.objects.get(kind="FTMHostedServiceEndSummary", payload__interface="PAYMENT_ORIGINATOR").payload
    begin = OutboundMessage.objects.get(kind="FTMHostedServiceBeginSummary", payload__interface="PAYMENT_ORIGINATOR").payload

    as_float = json.loads(json.dumps(end))
    as_float["totals"][0]["pending_value"] = 1.5
    assert any("pending_value" in e for e in schema_errors("FTMHostedServiceEndSummary", as_float))
    assert schema_errors("FTMHostedServiceBeginSummary", begin | {"totals": end["totals"]})  # Begin carries no figures
    assert schema_errors("FTMInvokedServiceSummary", end)  # wrong event and direction
    assert schema_errors("FTMHostedServiceEndSummary", end | {"interval_end": "2026-03-02 11:00:00"})


def test_a_retried_action_publishes_nothing_twice_and_stores_no_second_summary(task_run, now, control_queue_file):
    transactions_feed(items=FEED)
    now(END)
    run = task_run(START, END, HOSTED)
    hosted_summary_action(run)
    first = {m.dedupe_key: m.payload for m in OutboundMessage.objects.all()}
    summaries = list(ServiceSummary.objects.order_by("id").values())

    # The retry happens later, after more business: it still adds nothing.
    now("2026-03-02T11:05:00Z")
    transactions_feed(items=[transaction_item("LATE", received_at="2026-03-02T10:50:00Z")])
    hosted_summary_action(run)

    assert {m.dedupe_key: m.payload for m in OutboundMessage.objects.all()} == first
    assert list(ServiceSummary.objects.order_by("id").values()) == summaries
    outbox_publish_all()
    hosted_summary_action(run)
    assert OutboundMessage.objects.count() == 4
    assert [json.loads(line) for line in control_queue_file.read_text().splitlines()] == list(first.values())


def test_the_dedupe_key_is_task_interface_interval_end_and_event():
    key = summary_dedupe_key(
        task="hosted-hourly", interface="PAYMENT_ORIGINATOR", interval_end=parse_instant(END), event="FTMHostedServiceEndSummary"
    )
    assert key == f"FTMHostedServiceEndSummary:hosted-hourly:PAYMENT_ORIGINATOR:{END}"


def test_a_task_with_a_very_long_name_still_dedupes(task_run, now):
    now(END)
    run = task_run(START, END, HOSTED, name="t" * 200)
    hosted_summary_action(run)
    hosted_summary_action(run)
    keys = list(OutboundMessage.objects.values_list("dedupe_key", flat=True))
    assert len(keys) == len(set(keys)) == 4
    assert all(len(key) <= 255 for key in keys)


def test_the_same_interval_of_two_tasks_gives_each_its_summary(task_run, now):
    now(END)
    hosted_summary_action(task_run(START, END, ("PAYMENT_ORIGINATOR",), name="first"))
    hosted_summary_action(task_run(START, END, ("PAYMENT_ORIGINATOR",), name="second"))
    assert OutboundMessage.objects.count() == 4
    assert list(ServiceSummary.objects.order_by("task").values_list("task", flat=True).distinct()) == ["first", "second"]


def test_an_interface_of_the_other_direction_is_skipped_with_a_warning(task_run, now, caplog):
    now(END)
    with caplog.at_level(logging.WARNING, logger="monitoring.summaries.emit"):
        hosted_summary_action(task_run(START, END, ("PAYMENT_ORIGINATOR", "LIQUIDITY_SERVICE"), subtype="HOSTED_SERVICE_MONITOR"))
        invoked_summary_action(task_run(START, END, ("PAYMENT_ORIGINATOR",), subtype="INVOKED_SERVICE_MONITOR"))

    assert kinds_in_outbox() == [
        ("FTMHostedServiceBeginSummary", "PAYMENT_ORIGINATOR"),
        ("FTMHostedServiceEndSummary", "PAYMENT_ORIGINATOR"),
    ]
    assert "interface LIQUIDITY_SERVICE is INVOKED, skipped" in caplog.text
    assert "interface PAYMENT_ORIGINATOR is HOSTED, skipped" in caplog.text


def test_a_task_without_interfaces_emits_nothing(task_run, now):
    now(END)
    hosted_summary_action(task_run(START, END, (), subtype="HOSTED_SERVICE_MONITOR"))
    assert not OutboundMessage.objects.exists()


def test_the_summary_row_keeps_what_was_published(task_run, now):
    transactions_feed(items=FEED)
    now(END)
    invoked_summary_action(task_run(START, END, INVOKED, name="invoked"))

    summary = ServiceSummary.objects.get(interface__code="LIQUIDITY_SERVICE")
    assert summary.message.payload["totals"] == summary.totals
    assert (summary.task, summary.event, summary.direction) == ("invoked", "FTMInvokedServiceSummary", "INVOKED")
    assert (summary.interval_start, summary.interval_end, summary.emitted_at) == (
        parse_instant(START), parse_instant(END), parse_instant(END)
    )


def test_the_latest_figures_of_an_interface(task_run, now):
    interface = MonitoredInterface.objects.get(code="PAYMENT_ORIGINATOR")
    assert interface_latest_figures(interface) is None
    transactions_feed(items=FEED)
    now(END)
    hosted_summary_action(task_run(START, END, HOSTED))
    now("2026-03-02T12:00:00Z")
    hosted_summary_action(task_run(END, "2026-03-02T12:00:00Z", HOSTED))

    latest = interface_latest_figures(interface)

    assert latest.event == "FTMHostedServiceEndSummary"  # never the Begin summary, which has no figures
    assert latest.interval_end == parse_instant("2026-03-02T12:00:00Z")
    assert [row["currency"] for row in latest.totals] == ["EUR"]  # JPY and BHD finished in the previous hour
    assert latest.totals[0]["pending_count"] == 1


def test_the_summaries_api_filters_by_task_interface_event_and_time(task_run, now, viewer, feeder, api_client_for):
    transactions_feed(items=FEED)
    now(END)
    hosted_summary_action(task_run(START, END, HOSTED, name="hosted"))
    invoked_summary_action(task_run(START, END, INVOKED, name="invoked"))
    now("2026-03-02T12:00:00Z")
    invoked_summary_action(task_run(END, "2026-03-02T12:00:00Z", INVOKED, name="invoked"))
    client = api_client_for(viewer)

    def listed(**params) -> list[dict]:
        answer = client.get("/api/v1/summaries/", params)
        assert answer.status_code == 200, answer.json()
        return answer.json()["results"]

    assert len(listed()) == 4 + 3 + 3
    assert {s["interface"] for s in listed(task="hosted")} == set(HOSTED)
    assert [s["interval_end"] for s in listed(interface="LIQUIDITY_SERVICE")] == [END, "2026-03-02T12:00:00Z"]
    assert len(listed(event="FTMHostedServiceEndSummary")) == 2
    assert len(listed(since="2026-03-02T11:30:00Z")) == 3
    assert len(listed(until="2026-03-02T11:30:00Z")) == 7
    one = listed(task="invoked", interface="LIQUIDITY_SERVICE", until="2026-03-02T11:30:00Z")[0]
    message = OutboundMessage.objects.get(dedupe_key=one["dedupe_key"])
    assert one["uuid"] == message.payload["uuid"] and one["totals"] == message.payload["totals"]
    assert one["message_status"] == "PENDING"
    assert {"id", "event", "task", "direction", "interval_start", "emitted_at"} <= set(one)
    assert api_client_for(feeder).get("/api/v1/summaries/").status_code == 403
    assert client.post("/api/v1/summaries/", {}, format="json").status_code in (403, 405)


def test_a_summary_row_copies_the_message_already_in_the_outbox(task_run, now):
    transactions_feed(items=FEED)
    now(END)
    run = task_run(START, END, HOSTED)
    hosted_summary_action(run)
    published = {m.dedupe_key: (m.id, m.payload) for m in OutboundMessage.objects.all()}
    ServiceSummary.objects.all().delete()  # as if only the outbox rows had survived

    now("2026-03-02T11:05:00Z")
    transactions_feed(items=[transaction_item("LATE", received_at="2026-03-02T10:50:00Z")])
    hosted_summary_action(run)

    assert {m.dedupe_key: (m.id, m.payload) for m in OutboundMessage.objects.all()} == published
    for summary in ServiceSummary.objects.select_related("message"):
        message_id, payload = published[summary.message.dedupe_key]
        assert summary.message_id == message_id
        assert (summary.totals, summary.emitted_at) == (payload["totals"], parse_instant(payload["emitted_at"]))


def test_the_action_costs_the_same_statements_for_one_interface_or_three(task_run, now):
    transactions_feed(items=FEED)
    now(END)
    with CaptureQueriesContext(connection) as one:
        invoked_summary_action(task_run(START, END, INVOKED[:1], name="one"))
    with CaptureQueriesContext(connection) as three:
        invoked_summary_action(task_run(START, END, INVOKED, name="three"))

    assert OutboundMessage.objects.filter(payload__task="three").count() == 3
    assert len(three.captured_queries) == len(one.captured_queries)
