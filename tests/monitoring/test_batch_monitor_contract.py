"""DOMAIN §1 and issue 4 to the letter, through the public surfaces: the API, ``scan_batches
--now`` and ``load_arrivals``. Edges a reviewer found uncovered: arrivals two windows ahead,
chains of held arrivals, the window after a FAILED one, every field of the file-exception
messages, the exact config fields, extracts out of range."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from monitoring.batches.models import BatchConfig, BatchFile, BatchWindow
from portal.models import AuditEntry, OutboundMessage
from portal.validation import schema_errors

pytestmark = pytest.mark.django_db

ARRIVALS = "/api/v1/arrivals/"
CONFIGS = "/api/v1/batch-configs/"
WINDOWS = "/api/v1/batch-windows/"
HELD = "/api/v1/held-arrivals/"

CONFIG = {
    "name": "GL_DAILY",
    "tenant": "acme",
    "description": "",
    "sources": ["gl_lines", "gl_headers"],
    "window_hours": 24,
    "max_wait_hours": 2,
    "target_app": "ledger",
    "target_workflow": "post_gl",
    "exception_check": True,
    "active": True,
    "interface": None,
    "realert_minutes": 30,
    "risk_tolerance_minutes": 10,  # DOMAIN §8
}


def arrival(source: str, extract: str, tenant: str = "acme") -> dict:
    return {"tenant": tenant, "source": source, "extract_timestamp": extract}


@pytest.fixture
def clients(administrator, operator, feeder, viewer, api_client_for, now):
    now("2026-03-02T01:00:00Z")
    return {
        "admin": api_client_for(administrator),
        "operator": api_client_for(operator),
        "feeder": api_client_for(feeder),
        "viewer": api_client_for(viewer),
    }


@pytest.fixture
def gl(clients) -> dict:
    answer = clients["admin"].post(CONFIGS, CONFIG, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def post(clients, body):
    answer = clients["feeder"].post(ARRIVALS, body, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def windows() -> list[tuple[str, str, str, int]]:
    return [
        (w.window_start.strftime("%m-%d %H"), w.window_end.strftime("%m-%d %H"), w.status, w.received_count)
        for w in BatchWindow.objects.order_by("window_start")
    ]


def sent(state: str | None = None) -> list[dict]:
    payloads = [m.payload for m in OutboundMessage.objects.filter(kind="control_message").order_by("id")]
    return [p for p in payloads if state is None or p["btch_dtl"]["state"] == state]


def scan(now: str) -> None:
    call_command("scan_batches", "--now", now, stdout=io.StringIO())


# --- configs ----------------------------------------------------------------------------------


def test_config_reads_back_with_exactly_the_issue_fields_and_sources_in_the_given_order(clients, gl):
    assert gl == {**CONFIG, "id": BatchConfig.objects.get().id}

    answer = clients["admin"].put(
        f"{CONFIGS}{gl['id']}/", {**CONFIG, "sources": ["gl_totals", "gl_headers", "gl_lines"]}, format="json"
    )

    assert answer.status_code == 200, answer.json()
    assert answer.json()["sources"] == ["gl_totals", "gl_headers", "gl_lines"]
    assert clients["viewer"].get(CONFIGS).json()["results"] == [answer.json()]


@pytest.mark.parametrize(("field", "value"), [("window_hours", 10**6), ("max_wait_hours", 10**6)])
def test_hours_beyond_ten_years_are_refused_naming_the_field(clients, field, value):
    answer = clients["admin"].post(CONFIGS, {**CONFIG, field: value}, format="json")

    assert answer.status_code == 400
    assert field in answer.json()
    assert not BatchConfig.objects.exists()


# --- arrivals: bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("extract", ["9999-12-31T23:00:00Z", "0001-01-01T00:00:00+05:00"])
def test_extract_out_of_range_is_refused_naming_item_and_field(clients, gl, extract):
    body = [arrival("gl_lines", "2026-03-02T00:00:00Z"), arrival("gl_headers", extract)]

    answer = clients["feeder"].post(ARRIVALS, body, format="json")

    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"index": 1, "field": "extract_timestamp", "message": answer.json()["errors"][0]["message"]}]
    assert "out of range" in answer.json()["errors"][0]["message"]
    assert not BatchFile.objects.exists() and not OutboundMessage.objects.exists()


# --- placement ------------------------------------------------------------------------------------


def test_arrival_two_windows_ahead_waits_for_the_window_between(clients, gl):
    post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    post(clients, arrival("gl_headers", "2026-03-02T05:00:00Z"))  # [02, 03) COMPLETED

    two_ahead = post(clients, arrival("gl_lines", "2026-03-04T05:00:00Z"))

    assert two_ahead == {"window_id": None, "window_status": None, "exception": "FUTURE_WINDOW"}
    [held] = clients["viewer"].get(HELD).json()["results"]
    assert held["blocked_by"] == {
        "window_id": None, "window_start": "2026-03-03T00:00:00Z", "window_end": "2026-03-04T00:00:00Z", "status": None,
    }
    # The window between is opened by its first arrival, at the previous end, not at the extract.
    between = post(clients, arrival("gl_lines", "2026-03-03T09:00:00Z"))
    assert windows()[-1] == ("03-03 00", "03-04 00", "OPEN", 1)
    assert between["exception"] is None
    assert BatchFile.objects.get(extract_timestamp="2026-03-04T05:00:00Z").held

    post(clients, arrival("gl_headers", "2026-03-03T10:00:00Z"))

    assert windows() == [
        ("03-02 00", "03-03 00", "COMPLETED", 2),
        ("03-03 00", "03-04 00", "COMPLETED", 2),
        ("03-04 00", "03-05 00", "OPEN", 1),
    ]
    assert clients["viewer"].get(HELD).json()["results"] == []


def test_held_arrivals_across_several_windows_apply_in_extract_order_in_one_chain(clients, gl):
    post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    answers = post(
        clients,
        [
            arrival("gl_headers", "2026-03-04T06:00:00Z"),
            arrival("gl_lines", "2026-03-03T05:00:00Z"),
            arrival("gl_lines", "2026-03-04T05:00:00Z"),
            arrival("gl_lines", "2026-03-03T07:00:00Z"),  # applied after [03, 04) completed: PREVIOUS_WINDOW
            arrival("gl_headers", "2026-03-03T06:00:00Z"),
            arrival("gl_lines", "2026-03-03T05:30:00Z"),  # a second copy while [03, 04) is open: DUPLICATE
        ],
    )
    assert [a["exception"] for a in answers] == ["FUTURE_WINDOW"] * 6

    last = post(clients, arrival("gl_headers", "2026-03-02T06:00:00Z"))

    assert last == {"window_id": BatchWindow.objects.order_by("window_start")[0].id, "window_status": "COMPLETED", "exception": None}
    assert windows() == [
        ("03-02 00", "03-03 00", "COMPLETED", 2),
        ("03-03 00", "03-04 00", "COMPLETED", 2),
        ("03-04 00", "03-05 00", "COMPLETED", 2),
    ]
    assert not BatchFile.objects.filter(held=True).exists()
    assert [(m["btch_dtl"]["state"], m["extractStartTimeStamp"]) for m in sent() if m["btch_dtl"]["state"] != "FUTURE_WINDOW"] == [
        ("COMPLETED", "2026-03-02 00:00:00"),
        ("DUPLICATE", "2026-03-03 00:00:00"),
        ("COMPLETED", "2026-03-03 00:00:00"),
        ("PREVIOUS_WINDOW", "2026-03-03 00:00:00"),
        ("COMPLETED", "2026-03-04 00:00:00"),
    ]
    late = {f.extract_timestamp.strftime("%d %H:%M"): f for f in BatchFile.objects.filter(source_name="gl_lines")}
    assert (late["03 05:30"].exception, late["03 05:30"].counted) == ("DUPLICATE", False)
    assert (late["03 07:00"].exception, late["03 07:00"].counted) == ("PREVIOUS_WINDOW", False)
    assert late["03 07:00"].window_id == late["03 05:00"].window_id
    assert all(w.trigger_status == "SENT" for w in BatchWindow.objects.all())


def test_after_a_failed_window_the_next_opens_at_its_end_and_held_arrivals_move_on(clients, gl):
    first = post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    post(clients, arrival("gl_lines", "2026-03-03T04:00:00Z"))  # held behind the OPEN window

    answer = clients["operator"].post(f"{WINDOWS}{first['window_id']}/fail/", {"reason": "extract lost"}, format="json")

    assert answer.status_code == 200, answer.json()
    assert (answer.json()["status"], answer.json()["held_applied"]) == ("FAILED", 1)
    assert windows() == [("03-02 00", "03-03 00", "FAILED", 1), ("03-03 00", "03-04 00", "OPEN", 1)]
    entry = AuditEntry.objects.get(action="batch_window.fail")
    assert (entry.actor_name, entry.reason, entry.after["status"]) == ("operator", "extract lost", "FAILED")
    # FAILED counts as finished: an arrival for it now is for a previous window.
    late = post(clients, arrival("gl_headers", "2026-03-02T05:00:00Z"))
    assert late == {"window_id": first["window_id"], "window_status": "FAILED", "exception": "PREVIOUS_WINDOW"}


def test_file_exception_messages_carry_every_field(clients, gl):
    post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    post(clients, arrival("gl_lines", "2026-03-02T01:00:00Z"))  # DUPLICATE
    post(clients, arrival("gl_lines", "2026-03-01T23:00:00Z"))  # PREVIOUS_WINDOW, before the first window
    post(clients, arrival("gl_headers", "2026-03-03T00:00:00Z"))  # FUTURE_WINDOW: the end is outside

    messages = sent()
    assert [m["btch_dtl"]["state"] for m in messages] == ["DUPLICATE", "PREVIOUS_WINDOW", "FUTURE_WINDOW"]
    window_id = BatchWindow.objects.get().id
    for message, source in zip(messages, ["gl_lines", "gl_lines", "gl_headers"], strict=True):
        assert schema_errors("control_message", message) == []
        state = message["btch_dtl"]["state"]
        assert message["exceptionName"] == state
        assert (message["exceptionFlag"], message["exceptionType"], message["exceptionArgument"]) == (
            "Y", "Business Exception", source,
        )
        assert (message["eventMajor"], message["eventMinor"], message["entity"], message["version"]) == (
            "BATCHING", "GL_DAILY", "ledger", "1",
        )
        assert message["subEntity"] == {"workflow": "post_gl"} and message["retryCount"] == 0
        assert message["eventMessage"].startswith("GL_DAILY (acme): ")
        assert message["eventTimeStamp"] == "2026-03-02 01:00:00"
        assert (message["extractStartTimeStamp"], message["extractEndTimeStamp"]) == ("2026-03-02 00:00:00", "2026-03-03 00:00:00")
        detail = message["btch_dtl"]
        assert (detail["tenant"], detail["config"], detail["window_id"]) == ("acme", "GL_DAILY", window_id)
        assert (detail["window_start"], detail["window_end"], detail["sla"]) == (
            "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", "2026-03-03T02:00:00Z",
        )
    exceptions = dict(BatchFile.objects.exclude(exception="").values_list("extract_timestamp__hour", "exception"))
    assert exceptions == {1: "DUPLICATE", 23: "PREVIOUS_WINDOW", 0: "FUTURE_WINDOW"}


# --- alerts -----------------------------------------------------------------------------------------


def test_delayed_finished_batch_realerts_with_its_sequence_then_the_next_batch_recovers(clients, gl):
    post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    post(clients, arrival("gl_headers", "2026-03-02T05:00:00Z"))
    scan("2026-03-03T01:59:00Z")
    scan("2026-03-03T02:00:00Z")  # the SLA: the next batch has not begun
    scan("2026-03-03T02:29:00Z")
    scan("2026-03-03T02:30:00Z")  # realert_minutes = 30
    scan("2026-03-03T03:00:00Z")

    alerts = [(m["btch_dtl"]["state"], m["retryCount"]) for m in sent() if m["btch_dtl"]["state"] != "COMPLETED"]
    assert alerts == [("DELAYED", 0), ("DELAYED", 1), ("DELAYED", 2)]
    keys = list(OutboundMessage.objects.filter(payload__btch_dtl__state="DELAYED").values_list("dedupe_key", flat=True))
    assert len(set(keys)) == 3
    delayed = sent("DELAYED")[0]
    assert (delayed["exceptionFlag"], delayed["exceptionArgument"], delayed["eventTimeStamp"]) == ("Y", "", "2026-03-03 02:00:00")
    assert clients["viewer"].get(WINDOWS, {"alert_state": "DELAYED"}).json()["results"][0]["status"] == "COMPLETED"

    clients["feeder"].post(ARRIVALS, arrival("gl_lines", "2026-03-03T01:00:00Z"), format="json")
    scan("2026-03-03T03:10:00Z")
    scan("2026-03-03T03:40:00Z")

    [recovered] = sent("RECOVERED")
    assert (recovered["exceptionFlag"], recovered["retryCount"]) == ("N", 0)
    assert recovered["btch_dtl"]["window_start"] == "2026-03-03T00:00:00Z"
    assert len(sent("DELAYED")) == 3


def test_late_first_files_of_the_next_batch_turn_delayed_into_open_for_the_new_window(clients, gl):
    post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    post(clients, arrival("gl_headers", "2026-03-02T05:00:00Z"))
    scan("2026-03-03T03:00:00Z")
    clients["feeder"].post(ARRIVALS, arrival("gl_lines", "2026-03-03T01:00:00Z"), format="json")

    scan("2026-03-04T00:30:00Z")  # the new window has ended, still missing gl_headers, SLA not passed

    assert [(m["btch_dtl"]["state"], m["btch_dtl"]["window_start"]) for m in sent() if m["btch_dtl"]["state"] != "COMPLETED"] == [
        ("DELAYED", "2026-03-02T00:00:00Z"),
        ("OPEN", "2026-03-03T00:00:00Z"),
    ]
    assert sent("OPEN")[0]["btch_dtl"]["missing_sources"] == ["gl_headers"]


# --- load_arrivals -------------------------------------------------------------------------------------


def test_load_arrivals_takes_one_pretty_printed_json_object(gl, tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(arrival("gl_lines", "2026-03-02T00:00:00Z"), indent=2))
    out = io.StringIO()

    call_command("load_arrivals", str(path), stdout=out, stderr=io.StringIO())

    assert "applied 1, refused 0" in out.getvalue()
    assert windows() == [("03-02 00", "03-03 00", "OPEN", 1)]


def test_held_arrival_of_a_source_no_longer_expected_does_not_count(clients, gl):
    clients["admin"].patch(f"{CONFIGS}{gl['id']}/", {"sources": ["gl_lines", "gl_headers", "gl_totals"]}, format="json")
    post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    post(clients, arrival("gl_totals", "2026-03-03T01:00:00Z"))  # held
    answer = clients["admin"].patch(f"{CONFIGS}{gl['id']}/", {"sources": ["gl_lines", "gl_headers"]}, format="json")
    assert answer.status_code == 200, answer.json()

    post(clients, arrival("gl_headers", "2026-03-02T05:00:00Z"))  # completes [02, 03): the held one is applied

    assert windows() == [("03-02 00", "03-03 00", "COMPLETED", 2), ("03-03 00", "03-04 00", "OPEN", 0)]
    totals = BatchFile.objects.get(source_name="gl_totals")
    assert (totals.held, totals.counted, totals.window.window_start.day) == (False, False, 3)


def test_schema_refuses_a_state_word_outside_btch_dtl_states(clients, gl):
    post(clients, arrival("gl_lines", "2026-03-02T00:00:00Z"))
    post(clients, arrival("gl_headers", "2026-03-02T01:00:00Z"))
    [trigger] = sent("COMPLETED")
    assert schema_errors("control_message", trigger) == []

    assert schema_errors("control_message", {**trigger, "exceptionName": "DONE"}) != []
    assert schema_errors("control_message", {**trigger, "version": 1}) != []
    assert schema_errors("control_message", {**trigger, "eventTimeStamp": "2026-03-02T01:00:00Z"}) != []
    assert schema_errors("control_message", {**trigger, "exceptionArgument": "gl_headers"}) != []
