"""DOMAIN §1's placement rules, one by one, through the arrivals service."""

from __future__ import annotations

import datetime as dt

import pytest

from monitoring.batches.models import BatchFile, BatchWindow
from monitoring.batches.services import arrivals_record, batch_window_fail, held_arrival_release
from portal.validation import schema_errors

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def at(hours: float) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def _clock(now):
    now("2026-03-05T12:00:00Z")


def test_first_arrival_opens_a_window_at_its_extract(make_config, arrive):
    config = make_config()

    result = arrive("gl_lines", at(1.5))

    window = BatchWindow.objects.get()
    assert (window.window_start, window.window_end) == (T0 + dt.timedelta(hours=1.5), T0 + dt.timedelta(hours=25.5))
    assert (window.status, window.received_count, window.expected_count, window.max_wait_hours) == ("OPEN", 1, 2, 2)
    assert window.extract_timestamp == T0 + dt.timedelta(hours=1.5)
    assert result.as_json() == {"window_id": window.id, "window_status": "OPEN", "exception": None}
    config.refresh_from_db()
    assert config.latest_window_id == window.id


def test_arrival_inside_the_current_window_is_recorded(make_config, arrive, messages):
    make_config()
    first = arrive("gl_lines", at(0))

    second = arrive("gl_headers", at(23.99))

    assert second.window.id == first.window.id
    file = BatchFile.objects.get(source_name="gl_headers")
    assert (file.window_id, file.counted, file.exception, file.held) == (first.window.id, True, "", False)
    assert file.payload == {"tenant": "acme", "source": "gl_headers", "extract_timestamp": at(23.99)}


def test_last_source_completes_the_window_and_sends_the_trigger(make_config, arrive, messages):
    make_config(target_app="ledger", target_workflow="post_gl")
    arrive("gl_lines", at(0))

    result = arrive("gl_headers", at(5))

    window = BatchWindow.objects.get()
    assert result.as_json() == {"window_id": window.id, "window_status": "COMPLETED", "exception": None}
    assert (window.status, window.trigger_status, window.received_count) == ("COMPLETED", "SENT", 2)
    [trigger] = messages()
    assert schema_errors("control_message", trigger) == []
    assert trigger["btch_dtl"]["state"] == "COMPLETED"
    assert trigger["exceptionFlag"] == "N" and trigger["exceptionName"] == "COMPLETED"
    assert trigger["exceptionArgument"] == "Target Trigger"
    assert trigger["entity"] == "ledger" and trigger["subEntity"] == {"workflow": "post_gl"}
    assert trigger["extractStartTimeStamp"] == "2026-03-02 00:00:00"
    assert trigger["extractEndTimeStamp"] == "2026-03-03 00:00:00"
    assert trigger["eventTimeStamp"] == "2026-03-05 12:00:00"
    assert trigger["btch_dtl"]["window_id"] == window.id
    assert trigger["btch_dtl"]["sla"] == "2026-03-03T02:00:00Z"
    assert (trigger["btch_dtl"]["received"], trigger["btch_dtl"]["expected"]) == (2, 2)


def test_source_received_twice_in_a_window_is_a_duplicate(make_config, arrive, messages):
    make_config()
    first = arrive("gl_lines", at(0))

    again = arrive("gl_lines", at(3))

    assert again.as_json() == {"window_id": first.window.id, "window_status": "OPEN", "exception": "DUPLICATE"}
    window = BatchWindow.objects.get()
    assert window.received_count == 1
    duplicate = BatchFile.objects.get(exception="DUPLICATE")
    assert duplicate.window_id == window.id and not duplicate.counted
    [message] = messages()
    assert message["btch_dtl"]["state"] == "DUPLICATE" and message["exceptionFlag"] == "Y"
    assert message["exceptionArgument"] == "gl_lines"
    assert message["btch_dtl"]["window_id"] == window.id


def test_next_window_starts_at_the_previous_end_not_at_the_extract(make_config, arrive):
    make_config()
    arrive("gl_lines", at(0))
    arrive("gl_headers", at(1))

    result = arrive("gl_lines", at(30))

    window = BatchWindow.objects.get(id=result.window.id)
    assert (window.window_start, window.window_end) == (T0 + dt.timedelta(hours=24), T0 + dt.timedelta(hours=48))
    assert window.extract_timestamp == T0 + dt.timedelta(hours=30)
    assert result.exception is None


def test_extract_before_the_current_window_is_previous_window(make_config, arrive, messages):
    make_config()
    arrive("gl_lines", at(0))
    arrive("gl_headers", at(1))
    current = arrive("gl_lines", at(24))

    late = arrive("gl_headers", at(12))  # belongs to the finished first window
    before_all = arrive("gl_headers", at(-5))  # before any window

    first = BatchWindow.objects.get(window_start=T0)
    assert late.as_json() == {"window_id": first.id, "window_status": "COMPLETED", "exception": "PREVIOUS_WINDOW"}
    assert before_all.as_json() == {"window_id": None, "window_status": None, "exception": "PREVIOUS_WINDOW"}
    assert BatchWindow.objects.get(id=current.window.id).received_count == 1
    assert BatchFile.objects.filter(exception="PREVIOUS_WINDOW", counted=False).count() == 2
    previous = messages("PREVIOUS_WINDOW")
    assert [m["exceptionArgument"] for m in previous] == ["gl_headers", "gl_headers"]
    assert previous[0]["btch_dtl"]["window_id"] == first.id
    assert previous[1]["btch_dtl"]["window_id"] == current.window.id  # judged against the current window


def test_extract_after_the_current_window_is_held_not_dropped(make_config, arrive, messages):
    make_config()
    arrive("gl_lines", at(0))

    early = arrive("gl_lines", at(30))

    assert early.as_json() == {"window_id": None, "window_status": None, "exception": "FUTURE_WINDOW"}
    held = BatchFile.objects.get(held=True)
    assert (held.exception, held.window_id, held.counted) == ("FUTURE_WINDOW", None, False)
    assert BatchWindow.objects.count() == 1
    [message] = messages("FUTURE_WINDOW")
    assert message["exceptionArgument"] == "gl_lines"
    assert message["extractStartTimeStamp"] == "2026-03-02 00:00:00"  # the window it waits behind


def test_held_arrivals_apply_in_extract_order_once_the_window_before_completes(make_config, arrive, messages):
    make_config()
    arrive("gl_lines", at(0))
    arrive("gl_lines", at(40))  # held, posted first
    arrive("gl_lines", at(30))  # held, earlier extract

    arrive("gl_headers", at(2))  # completes the first window

    second = BatchWindow.objects.get(window_start=T0 + dt.timedelta(hours=24))
    assert second.extract_timestamp == T0 + dt.timedelta(hours=30)  # the earlier extract opened it
    counted = BatchFile.objects.get(window=second, counted=True)
    duplicate = BatchFile.objects.get(window=second, exception="DUPLICATE")
    assert counted.extract_timestamp == T0 + dt.timedelta(hours=30)
    assert duplicate.extract_timestamp == T0 + dt.timedelta(hours=40)
    assert not BatchFile.objects.filter(held=True).exists()
    assert BatchFile.objects.filter(applied_at__isnull=False).count() == 2
    assert [m["btch_dtl"]["window_id"] for m in messages("DUPLICATE")] == [second.id]


def test_held_arrival_completing_a_window_releases_the_next_ones(make_config, arrive, messages):
    make_config()
    arrive("gl_lines", at(0))
    arrive("gl_lines", at(30))
    arrive("gl_headers", at(31))  # these two complete the second window once it opens
    arrive("gl_lines", at(50))  # third window

    arrive("gl_headers", at(1))

    windows = list(BatchWindow.objects.order_by("window_start").values_list("status", "received_count"))
    assert windows == [("COMPLETED", 2), ("COMPLETED", 2), ("OPEN", 1)]
    assert len(messages("COMPLETED")) == 2
    assert not BatchFile.objects.filter(held=True).exists()


def test_held_arrival_for_a_later_window_stays_held_while_the_next_is_open(make_config, arrive):
    make_config()
    arrive("gl_lines", at(0))
    arrive("gl_lines", at(30))
    arrive("gl_lines", at(60))

    arrive("gl_headers", at(1))

    assert list(BatchFile.objects.filter(held=True).values_list("extract_timestamp", flat=True)) == [
        T0 + dt.timedelta(hours=60)
    ]


def test_failed_window_counts_as_finished_and_lets_held_arrivals_move_on(make_config, arrive, operator):
    make_config()
    first = arrive("gl_lines", at(0))
    arrive("gl_headers", at(30))

    outcome = batch_window_fail(window_id=first.window.id, actor=operator, reason="source system down")

    assert (outcome.applied, outcome.still_held) == (1, 0)
    failed = BatchWindow.objects.get(id=first.window.id)
    assert (failed.status, failed.failed_by, failed.fail_reason) == ("FAILED", "operator", "source system down")
    assert failed.trigger_status == "NONE"
    second = BatchWindow.objects.get(window_start=T0 + dt.timedelta(hours=24))
    assert (second.status, second.received_count) == ("OPEN", 1)


def test_releasing_a_held_arrival_fails_the_unopened_window_that_blocks_it(make_config, arrive, operator):
    make_config()
    arrive("gl_lines", at(0))
    arrive("gl_headers", at(1))
    arrive("gl_lines", at(50))  # the window [24 h, 48 h) never received anything
    held = BatchFile.objects.get(held=True)

    outcome = held_arrival_release(file_id=held.id, actor=operator, reason="no data that day")

    assert outcome.window.window_start == T0 + dt.timedelta(hours=24)
    assert (outcome.window.status, outcome.window.received_count) == ("FAILED", 0)
    held.refresh_from_db()
    assert not held.held and held.window.window_start == T0 + dt.timedelta(hours=48)


def test_a_list_is_applied_in_order_within_one_request(make_config):
    make_config()
    items = [
        {"tenant": "acme", "source": "gl_lines", "extract_timestamp": at(0)},
        {"tenant": "acme", "source": "gl_lines", "extract_timestamp": at(1)},
        {"tenant": "acme", "source": "gl_headers", "extract_timestamp": at(2)},
        {"tenant": "acme", "source": "gl_headers", "extract_timestamp": at(26)},
        {"tenant": "acme", "source": "gl_lines", "extract_timestamp": at(80)},
    ]

    results = [r.as_json() for r in arrivals_record(items=items)]

    first, second = BatchWindow.objects.order_by("window_start")
    assert results == [
        {"window_id": first.id, "window_status": "OPEN", "exception": None},
        {"window_id": first.id, "window_status": "OPEN", "exception": "DUPLICATE"},
        {"window_id": first.id, "window_status": "COMPLETED", "exception": None},
        {"window_id": second.id, "window_status": "OPEN", "exception": None},
        {"window_id": None, "window_status": None, "exception": "FUTURE_WINDOW"},
    ]


def test_inactive_config_is_placed_like_any_other(make_config, arrive, messages):
    make_config(active=False)
    arrive("gl_lines", at(0))
    arrive("gl_lines", at(1))

    result = arrive("gl_headers", at(2))

    assert result.window_status == "COMPLETED"
    assert [m["btch_dtl"]["state"] for m in messages()] == ["DUPLICATE", "COMPLETED"]


def test_sources_of_two_configs_of_a_tenant_go_to_their_own_config(make_config, arrive):
    make_config("GL_DAILY", sources=("gl_lines",))
    make_config("AP_DAILY", sources=("ap_invoices",))
    make_config("GL_DAILY", tenant="globex", sources=("gl_lines",))

    arrive("gl_lines", at(0))
    arrive("ap_invoices", at(0))
    arrive("gl_lines", at(0), tenant="globex")

    assert sorted(BatchWindow.objects.values_list("config__tenant", "config__name", "status")) == [
        ("acme", "AP_DAILY", "COMPLETED"),
        ("acme", "GL_DAILY", "COMPLETED"),
        ("globex", "GL_DAILY", "COMPLETED"),
    ]
