"""The scan: OPEN, DELAYED, re-alerts and RECOVERED, one message per (state, window) change."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command

from monitoring.batches.models import BatchAlert, BatchConfig
from monitoring.batches.scan import batch_scan, batch_scan_configs
from monitoring.batches.services import batch_config_update, batch_window_fail
from monitoring.batches.tasks import batch_scan_action
from portal import clock
from portal.lib.taskrun import TaskRun
from portal.publisher import outbox_publish_all
from portal.validation import schema_errors

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def iso(hours: float) -> str:
    return at(hours).isoformat().replace("+00:00", "Z")


def scan(hours: float, **options):
    """Scan as the heartbeat would at T0 + hours."""
    clock.set_now(at(hours))
    return batch_scan(now=at(hours), **options)


def states(messages) -> list[tuple[str, int]]:
    return [(m["btch_dtl"]["state"], m["retryCount"]) for m in messages("OPEN") + messages("DELAYED") + messages("RECOVERED")]


@pytest.fixture
def gl(make_config, arrive, now):
    """GL_DAILY: window [T0, T0 + 24 h), SLA at 26 h, gl_lines received, gl_headers missing."""
    now(iso(1))
    config = make_config()
    arrive("gl_lines", iso(0))
    return config


def test_nothing_is_open_before_the_window_ends(gl, messages):
    report = scan(23.9)

    assert report.evaluated == 1
    assert messages("OPEN") == []


def test_window_past_its_end_with_missing_sources_is_open(gl, messages):
    scan(24.5)

    [message] = messages("OPEN")
    assert schema_errors("control_message", message) == []
    assert message["eventMessage"] == "GL_DAILY (acme): window 2026-03-02 00:00 to 2026-03-03 00:00 still waits for gl_headers"
    assert (message["eventMajor"], message["eventMinor"], message["exceptionFlag"]) == ("BATCHING", "GL_DAILY", "Y")
    assert (message["exceptionType"], message["exceptionName"]) == ("Business Exception", "OPEN")
    assert message["exceptionArgument"] == "gl_headers"
    assert message["retryCount"] == 0
    assert message["eventTimeStamp"] == "2026-03-03 00:30:00"
    detail = message["btch_dtl"]
    assert detail["missing_sources"] == ["gl_headers"]
    assert (detail["tenant"], detail["config"], detail["received"], detail["expected"]) == ("acme", "GL_DAILY", 1, 2)
    assert (detail["window_start"], detail["window_end"], detail["sla"]) == (
        "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", "2026-03-03T02:00:00Z",
    )


def test_scanning_again_in_the_same_state_sends_nothing_more(gl, messages):
    for minutes in range(30, 120, 9):  # ten scans, all OPEN
        scan(24 + minutes / 60)

    assert states(messages) == [("OPEN", 0)]


def test_past_the_sla_the_open_batch_becomes_delayed(gl, messages):
    scan(24.5)
    scan(26)

    assert states(messages) == [("OPEN", 0), ("DELAYED", 0)]
    delayed = messages("DELAYED")[0]
    assert delayed["eventMessage"] == (
        "GL_DAILY (acme): window 2026-03-02 00:00 to 2026-03-03 00:00 is late: gl_headers expected by 2026-03-03 02:00"
    )
    assert delayed["btch_dtl"]["missing_sources"] == ["gl_headers"]


def test_first_scan_after_the_sla_sends_only_delayed(gl, messages):
    scan(30)

    assert states(messages) == [("DELAYED", 0)]


def test_alert_repeats_after_the_realert_interval_with_its_sequence_number(gl, messages):
    BatchConfig.objects.filter(id=gl.id).update(realert_minutes=30)
    scan(24.1)
    scan(24.5)  # 24 minutes later: not yet
    scan(24.6)
    scan(25.0)
    scan(25.2)

    assert states(messages) == [("OPEN", 0), ("OPEN", 1), ("OPEN", 2)]
    assert len({m["uuid"] for m in messages()}) == 3


def test_without_realert_interval_an_alert_never_repeats(gl, messages):
    scan(24.1)
    scan(25.9)

    assert states(messages) == [("OPEN", 0)]


def test_missing_source_arriving_before_the_sla_recovers(gl, arrive, messages):
    scan(24.5)
    clock.set_now(at(25))
    arrive("gl_headers", iso(3))
    scan(25.1)
    scan(25.5)

    assert states(messages) == [("OPEN", 0), ("RECOVERED", 0)]
    recovered = messages("RECOVERED")[0]
    assert schema_errors("control_message", recovered) == []
    assert (recovered["exceptionFlag"], recovered["exceptionArgument"]) == ("N", "")
    assert recovered["btch_dtl"]["window_id"] == gl.windows.get().id
    assert recovered["btch_dtl"]["missing_sources"] == []


def test_completed_window_past_its_sla_with_no_newer_window_is_delayed(gl, arrive, messages):
    clock.set_now(at(5))
    arrive("gl_headers", iso(5))  # complete long before the SLA
    scan(25)
    assert states(messages) == []

    scan(26)

    [delayed] = messages("DELAYED")
    assert delayed["eventMessage"] == (
        "GL_DAILY (acme): the batch after window 2026-03-02 00:00 to 2026-03-03 00:00 is late: "
        "its files were expected by 2026-03-03 02:00"
    )
    assert delayed["btch_dtl"]["missing_sources"] == [] and delayed["exceptionArgument"] == ""


def test_window_completing_after_its_sla_leaves_the_config_delayed(gl, arrive, messages):
    scan(27)
    clock.set_now(at(28))
    arrive("gl_headers", iso(6))
    scan(28.5)

    assert states(messages) == [("DELAYED", 0)]
    assert BatchAlert.objects.get(config=gl).state == "DELAYED"

    clock.set_now(at(29))
    arrive("gl_lines", iso(25))  # the next batch begins: a newer window
    scan(29.5)

    assert states(messages) == [("DELAYED", 0), ("RECOVERED", 0)]
    assert messages("RECOVERED")[0]["btch_dtl"]["window_start"] == "2026-03-03T00:00:00Z"


def test_failing_an_open_alerted_window_recovers_before_its_sla(gl, operator, messages):
    scan(24.5)
    batch_window_fail(window_id=gl.windows.get().id, actor=operator, reason="extract cancelled")
    scan(24.6)

    assert states(messages) == [("OPEN", 0), ("RECOVERED", 0)]


def test_without_exception_check_a_batch_is_open_but_never_delayed(make_config, arrive, now, messages):
    now(iso(1))
    make_config(exception_check=False)
    arrive("gl_lines", iso(0))
    scan(24.5)
    scan(100)

    assert states(messages) == [("OPEN", 0)]


def test_without_exception_check_a_finished_window_raises_nothing(make_config, arrive, now, messages):
    now(iso(1))
    make_config(exception_check=False)
    arrive("gl_lines", iso(0))
    arrive("gl_headers", iso(1))
    scan(100)

    assert states(messages) == []


def test_inactive_config_raises_no_alert(make_config, arrive, now, messages):
    now(iso(1))
    make_config(active=False)
    arrive("gl_lines", iso(0))
    scan(24.5)
    scan(30)

    assert states(messages) == []


def test_deactivating_an_alerted_config_closes_its_episode_silently(gl, messages):
    scan(24.5)
    batch_config_update(actor="admin", config_id=gl.id, fields={"active": False}, sources=None)
    scan(25)
    scan(30)

    assert states(messages) == [("OPEN", 0)]
    assert BatchAlert.objects.get(config=gl).state == "NONE"

    batch_config_update(actor="admin", config_id=gl.id, fields={"active": True}, sources=None)
    scan(30.5)

    assert states(messages) == [("OPEN", 0), ("DELAYED", 0)]


def test_reactivated_config_alerts_again_for_the_same_window(make_config, arrive, now, messages):
    now(iso(1))
    config = make_config(exception_check=False)
    arrive("gl_lines", iso(0))
    scan(24.5)
    batch_config_update(actor="admin", config_id=config.id, fields={"active": False}, sources=None)
    scan(25)
    batch_config_update(actor="admin", config_id=config.id, fields={"active": True}, sources=None)
    scan(25.5)

    assert states(messages) == [("OPEN", 0), ("OPEN", 0)]
    assert len({m["uuid"] for m in messages("OPEN")}) == 2


def test_scan_looks_only_at_configs_whose_state_may_have_changed(gl, make_config, arrive, messages):
    make_config("AP_DAILY", sources=("ap_invoices", "ap_credits"))
    arrive("ap_invoices", iso(0))
    assert scan(10).evaluated == 2
    assert scan(11).evaluated == 0  # nothing due before the windows end at 24 h
    assert scan(24.1).evaluated == 2
    assert scan(24.2).evaluated == 0
    clock.set_now(at(24.3))
    arrive("gl_headers", iso(1))  # completes GL_DAILY: due again
    assert scan(24.4).evaluated == 1


def test_task_with_interfaces_scans_only_their_configs(make_config, arrive, now, messages):
    now(iso(1))
    make_config("PAY", sources=("pay_in", "pay_out"), interface="PAYMENT_ORIGINATOR")
    make_config("BULK", sources=("bulk_in", "bulk_out"), interface="BATCH_PAYMENT_ORIGINATOR")
    make_config("OTHER", sources=("o1", "o2"))
    for source in ("pay_in", "bulk_in", "o1"):
        arrive(source, iso(0))
    clock.set_now(at(25))

    batch_scan_action(TaskRun(1, "bulk", "BATCH_MONITOR", ("BATCH_PAYMENT_ORIGINATOR",), at(24.9), at(25)))
    assert [m["eventMinor"] for m in messages("OPEN")] == ["BULK"]

    batch_scan_action(TaskRun(2, "all", "BATCH_MONITOR", (), at(24.9), at(25.1)))
    assert sorted(m["eventMinor"] for m in messages("OPEN")) == ["BULK", "OTHER", "PAY"]


def test_scan_now_looks_at_the_chosen_configs_even_when_not_due(gl, messages):
    scan(24.5)
    BatchAlert.objects.filter(config=gl).update(due_at=None)

    report = batch_scan_configs(now=at(27), config_ids=[gl.id])

    assert report.evaluated == 1
    assert states(messages) == [("OPEN", 0), ("DELAYED", 0)]


def test_scan_batches_command_scans_at_the_given_time(gl, messages):
    call_command("scan_batches", "--now", "2026-03-03T00:30:00Z")

    assert states(messages) == [("OPEN", 0)]
    assert messages("OPEN")[0]["eventTimeStamp"] == "2026-03-03 00:30:00"


def test_message_reaches_the_control_queue_file(gl, control_queue_file):
    scan(24.5)

    assert outbox_publish_all().sent == 1
    [line] = control_queue_file.read_text().splitlines()
    body = json.loads(line)
    assert body["btch_dtl"]["state"] == "OPEN" and schema_errors("control_message", body) == []


def test_sqs_backend_receives_the_scan_message(gl, sqs_queue, sqs_receive):
    url = sqs_queue("control")
    scan(24.5)

    assert outbox_publish_all().sent == 1

    [received] = sqs_receive(url)
    body = json.loads(received["Body"])
    assert body["btch_dtl"]["state"] == "OPEN"
    assert body["eventMessage"].endswith("still waits for gl_headers")
    assert schema_errors("control_message", body) == []
