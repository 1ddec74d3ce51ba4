"""The batch monitor's API: arrivals, configs, windows, held arrivals; roles and bad input."""

from __future__ import annotations

import pytest

from monitoring.batches.models import BatchConfig, BatchFile, BatchWindow
from portal.models import AuditEntry, OutboundMessage

pytestmark = pytest.mark.django_db

ARRIVALS = "/api/v1/arrivals/"
CONFIGS = "/api/v1/batch-configs/"
WINDOWS = "/api/v1/batch-windows/"
HELD = "/api/v1/held-arrivals/"


def arrival(source: str = "gl_lines", extract: str = "2026-03-02T01:00:00Z", tenant: str = "acme") -> dict:
    return {"tenant": tenant, "source": source, "extract_timestamp": extract}


@pytest.fixture
def gl(make_config, now):
    now("2026-03-03T00:30:00Z")
    return make_config()


def nothing_written() -> bool:
    return not (BatchFile.objects.exists() or BatchWindow.objects.exists() or OutboundMessage.objects.exists())


# --- arrivals ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["feeder", "operator", "administrator"])
def test_feeders_operators_and_administrators_post_arrivals(gl, role, request, api_client_for):
    user = request.getfixturevalue(role)

    answer = api_client_for(user).post(ARRIVALS, arrival(), format="json")

    assert answer.status_code == 201
    window = BatchWindow.objects.get()
    assert answer.json() == {"window_id": window.id, "window_status": "OPEN", "exception": None}


def test_viewer_may_not_post_arrivals(gl, viewer, api_client_for):
    assert api_client_for(viewer).post(ARRIVALS, arrival(), format="json").status_code == 403
    assert nothing_written()


def test_anonymous_may_not_post_arrivals(gl, api_client_for):
    assert api_client_for(None).post(ARRIVALS, arrival(), format="json").status_code == 401


def test_a_list_of_arrivals_answers_a_list_in_the_same_order(gl, feeder, api_client_for):
    body = [arrival("gl_lines"), arrival("gl_lines"), arrival("gl_headers"), arrival("gl_lines", "2026-03-05T00:00:00Z")]

    answer = api_client_for(feeder).post(ARRIVALS, body, format="json")

    assert answer.status_code == 201
    window = BatchWindow.objects.get()
    assert answer.json() == [
        {"window_id": window.id, "window_status": "OPEN", "exception": None},
        {"window_id": window.id, "window_status": "OPEN", "exception": "DUPLICATE"},
        {"window_id": window.id, "window_status": "COMPLETED", "exception": None},
        {"window_id": None, "window_status": None, "exception": "FUTURE_WINDOW"},
    ]


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({"tenant": "nobody"}, "tenant", "unknown tenant 'nobody'"),
        ({"source": "ap_lines"}, "source", "no config of tenant 'acme' expects source 'ap_lines'"),
        ({"extract_timestamp": "2026-03-02T01:00:00"}, "extract_timestamp", "no time zone offset"),
        ({"extract_timestamp": "yesterday"}, "extract_timestamp", "not an ISO-8601 date-time"),
        ({"extract_timestamp": 1772412000}, "extract_timestamp", "required, a non-empty string"),
        ({"source": ""}, "source", "required"),
    ],
)
def test_bad_item_refuses_the_whole_list_naming_item_and_field(gl, feeder, api_client_for, bad, field, words):
    body = [arrival("gl_lines"), {**arrival("gl_headers"), **bad}]

    answer = api_client_for(feeder).post(ARRIVALS, body, format="json")

    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert (error["index"], error["field"]) == (1, field)
    assert words in error["message"]
    assert f"item 1: {field}" in answer.json()["detail"]
    assert nothing_written()


def test_missing_field_is_named(gl, feeder, api_client_for):
    answer = api_client_for(feeder).post(ARRIVALS, {"tenant": "acme", "source": "gl_lines"}, format="json")

    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"index": 0, "field": "extract_timestamp", "message": "required, a non-empty string"}]


def test_every_bad_item_is_reported(gl, feeder, api_client_for):
    body = [arrival(tenant="x"), arrival(), arrival(source="y"), "not an object"]

    answer = api_client_for(feeder).post(ARRIVALS, body, format="json")

    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(0, "tenant"), (2, "source"), (3, "(item)")]


def test_list_over_the_limit_is_refused(gl, feeder, api_client_for):
    body = [arrival()] * 10_001

    answer = api_client_for(feeder).post(ARRIVALS, body, format="json")

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["index"] == 10_000
    assert "at most 10000" in answer.json()["errors"][0]["message"]
    assert nothing_written()


def test_arrivals_are_listed_for_readers_with_filters(gl, viewer, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, [arrival(), arrival()], format="json")

    listed = api_client_for(viewer).get(ARRIVALS, {"exception": "DUPLICATE"}).json()["results"]

    assert [(a["tenant"], a["config"], a["source"], a["exception"]) for a in listed] == [("acme", "GL_DAILY", "gl_lines", "DUPLICATE")]
    assert listed[0]["extract_timestamp"] == "2026-03-02T01:00:00Z"
    assert api_client_for(feeder).get(ARRIVALS).status_code == 403


# --- configs -------------------------------------------------------------------------------

CONFIG = {
    "name": "AP_DAILY",
    "tenant": "acme",
    "description": "accounts payable",
    "sources": ["ap_invoices", "ap_credits"],
    "window_hours": 24,
    "max_wait_hours": 3,
    "target_app": "payables",
    "target_workflow": "post_ap",
    "exception_check": True,
    "active": True,
    "interface": "PAYMENT_ORIGINATOR",
    "realert_minutes": 60,
    "risk_tolerance_minutes": 15,
}


def test_administrator_creates_a_config_by_natural_keys(administrator, api_client_for):
    answer = api_client_for(administrator).post(CONFIGS, CONFIG, format="json")

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body == {**CONFIG, "id": BatchConfig.objects.get().id}
    entry = AuditEntry.objects.get(action="batch_config.create")
    assert entry.actor_name == "administrator" and entry.after["sources"] == ["ap_credits", "ap_invoices"]


@pytest.mark.parametrize("role", ["viewer", "feeder", "operator"])
def test_only_administrators_write_configs(role, request, api_client_for, make_config):
    config = make_config()
    client = api_client_for(request.getfixturevalue(role))

    assert client.post(CONFIGS, CONFIG, format="json").status_code == 403
    assert client.patch(f"{CONFIGS}{config.id}/", {"active": False}, format="json").status_code == 403
    assert client.delete(f"{CONFIGS}{config.id}/").status_code == 403
    assert BatchConfig.objects.get(id=config.id).active


@pytest.mark.parametrize(("role", "code"), [("viewer", 200), ("operator", 200), ("administrator", 200), ("feeder", 403)])
def test_readers_read_configs(role, code, request, api_client_for, make_config):
    make_config()
    assert api_client_for(request.getfixturevalue(role)).get(CONFIGS).status_code == code


def test_source_already_expected_by_another_config_of_the_tenant_is_refused(make_config, administrator, api_client_for):
    make_config("GL_DAILY", sources=("gl_lines", "ap_credits"))

    answer = api_client_for(administrator).post(CONFIGS, CONFIG, format="json")

    assert answer.status_code == 400
    assert answer.json() == {"sources": ["source 'ap_credits' is already expected by config 'GL_DAILY'"]}
    assert BatchConfig.objects.count() == 1


def test_same_source_name_in_another_tenant_is_fine(make_config, administrator, api_client_for):
    make_config("GL_DAILY", tenant="globex", sources=("ap_credits",))

    assert api_client_for(administrator).post(CONFIGS, CONFIG, format="json").status_code == 201


def test_config_name_is_unique_per_tenant(make_config, administrator, api_client_for):
    make_config("AP_DAILY", sources=("x",))

    answer = api_client_for(administrator).post(CONFIGS, CONFIG, format="json")

    assert answer.status_code == 400 and "name" in answer.json()


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"tenant": "Not a slug!"}, "tenant"),
        ({"window_hours": 0}, "window_hours"),
        ({"sources": []}, "sources"),
        ({"interface": "NOPE"}, "interface"),
        ({"realert_minutes": 0}, "realert_minutes"),
    ],
)
def test_bad_config_fields_are_named(administrator, api_client_for, bad, field):
    answer = api_client_for(administrator).post(CONFIGS, {**CONFIG, **bad}, format="json")

    assert answer.status_code == 400 and field in answer.json()
    assert not BatchConfig.objects.exists()


def test_changing_a_config_is_audited_with_before_and_after(make_config, administrator, api_client_for):
    config = make_config()

    answer = api_client_for(administrator).patch(
        f"{CONFIGS}{config.id}/", {"max_wait_hours": 5, "sources": ["gl_lines"]}, format="json"
    )

    assert answer.status_code == 200 and answer.json()["sources"] == ["gl_lines"]
    entry = AuditEntry.objects.get(action="batch_config.update")
    assert (entry.before["max_wait_hours"], entry.after["max_wait_hours"]) == (2, 5)
    assert (entry.before["sources"], entry.after["sources"]) == (["gl_headers", "gl_lines"], ["gl_lines"])


def test_removing_the_missing_source_completes_the_open_window(gl, administrator, feeder, api_client_for, messages):
    api_client_for(feeder).post(ARRIVALS, arrival("gl_lines"), format="json")

    api_client_for(administrator).patch(f"{CONFIGS}{gl.id}/", {"sources": ["gl_lines"]}, format="json")

    window = BatchWindow.objects.get()
    assert (window.status, window.received_count, window.expected_count) == ("COMPLETED", 1, 1)
    assert [m["btch_dtl"]["state"] for m in messages()] == ["COMPLETED"]


def test_config_with_history_cannot_be_deleted(gl, administrator, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, arrival(), format="json")

    assert api_client_for(administrator).delete(f"{CONFIGS}{gl.id}/").status_code == 409
    assert BatchConfig.objects.filter(id=gl.id).exists()


def test_config_without_history_is_deleted_and_audited(gl, administrator, api_client_for):
    assert api_client_for(administrator).delete(f"{CONFIGS}{gl.id}/").status_code == 204
    assert not BatchConfig.objects.exists()
    assert AuditEntry.objects.filter(action="batch_config.delete").count() == 1


# --- windows ---------------------------------------------------------------------------------


def test_windows_show_config_tenant_sla_and_missing_sources(gl, viewer, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, arrival(), format="json")

    [window] = api_client_for(viewer).get(WINDOWS).json()["results"]

    assert (window["config"], window["tenant"], window["status"]) == ("GL_DAILY", "acme", "OPEN")
    assert (window["window_start"], window["window_end"], window["sla"]) == (
        "2026-03-02T01:00:00Z", "2026-03-03T01:00:00Z", "2026-03-03T03:00:00Z",
    )
    assert (window["received_sources"], window["missing_sources"]) == (["gl_lines"], ["gl_headers"])
    assert (window["received_count"], window["expected_count"], window["trigger_status"]) == (1, 2, "NONE")


def test_windows_filter_by_config_tenant_status_and_alert_state(make_config, viewer, feeder, api_client_for, now):
    from monitoring.batches.scan import batch_scan

    now("2026-03-03T12:00:00Z")
    make_config("GL_DAILY", sources=("gl_lines", "gl_headers"))
    make_config("GL_DAILY", tenant="globex", sources=("gl_lines", "gl_headers"))
    make_config("AP_DAILY", sources=("ap_invoices",))
    feed = api_client_for(feeder)
    feed.post(ARRIVALS, [arrival(), arrival(tenant="globex"), arrival("ap_invoices")], format="json")
    batch_scan(now=now("2026-03-03T02:00:00Z"))
    client = api_client_for(viewer)

    def listed(**filters) -> list[tuple[str, str, str]]:
        results = client.get(WINDOWS, filters).json()["results"]
        return sorted((w["tenant"], w["config"], w["alert_state"]) for w in results)

    assert listed(tenant="globex") == [("globex", "GL_DAILY", "OPEN")]
    assert listed(config="GL_DAILY", tenant="acme") == [("acme", "GL_DAILY", "OPEN")]
    assert listed(status="COMPLETED") == [("acme", "AP_DAILY", "NONE")]
    assert listed(alert_state="OPEN") == [("acme", "GL_DAILY", "OPEN"), ("globex", "GL_DAILY", "OPEN")]
    assert listed(alert_state="NONE") == [("acme", "AP_DAILY", "NONE")]


def test_operator_fails_an_open_window_with_a_reason(gl, operator, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, [arrival(), arrival("gl_lines", "2026-03-03T05:00:00Z")], format="json")
    window = BatchWindow.objects.get()

    answer = api_client_for(operator).post(f"{WINDOWS}{window.id}/fail/", {"reason": "upstream outage"}, format="json")

    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["held_applied"], answer.json()["still_held"]) == ("FAILED", 1, 0)
    entry = AuditEntry.objects.get(action="batch_window.fail")
    assert (entry.actor_name, entry.reason, entry.after["status"]) == ("operator", "upstream outage", "FAILED")
    assert BatchWindow.objects.filter(status="OPEN").count() == 1


@pytest.mark.parametrize("role", ["viewer", "feeder"])
def test_viewers_and_feeders_may_not_fail_windows(gl, role, request, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, arrival(), format="json")
    window = BatchWindow.objects.get()

    answer = api_client_for(request.getfixturevalue(role)).post(f"{WINDOWS}{window.id}/fail/", {"reason": "x"}, format="json")

    assert answer.status_code == 403
    assert BatchWindow.objects.get().status == "OPEN"


def test_failing_a_finished_window_is_refused_with_its_status(gl, operator, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, [arrival(), arrival("gl_headers")], format="json")
    window = BatchWindow.objects.get()

    answer = api_client_for(operator).post(f"{WINDOWS}{window.id}/fail/", {"reason": "x"}, format="json")

    assert answer.status_code == 409 and answer.json()["status"] == "COMPLETED"
    assert not AuditEntry.objects.filter(action="batch_window.fail").exists()


def test_failing_needs_a_reason(gl, operator, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, arrival(), format="json")
    window = BatchWindow.objects.get()

    answer = api_client_for(operator).post(f"{WINDOWS}{window.id}/fail/", {"reason": "  "}, format="json")

    assert answer.status_code == 400 and "reason" in answer.json()
    assert BatchWindow.objects.get().status == "OPEN"


# --- held arrivals ---------------------------------------------------------------------------


def test_held_arrivals_are_listed_with_the_window_they_wait_for(gl, viewer, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, [arrival(), arrival("gl_headers", "2026-03-03T05:00:00Z")], format="json")
    window = BatchWindow.objects.get()

    [held] = api_client_for(viewer).get(HELD).json()["results"]

    assert (held["tenant"], held["config"], held["source"], held["extract_timestamp"]) == (
        "acme", "GL_DAILY", "gl_headers", "2026-03-03T05:00:00Z",
    )
    assert held["blocked_by"] == {
        "window_id": window.id, "window_start": "2026-03-02T01:00:00Z", "window_end": "2026-03-03T01:00:00Z", "status": "OPEN",
    }


def test_operator_releases_held_arrivals_by_failing_the_blocking_window(gl, operator, feeder, api_client_for):
    api_client_for(feeder).post(ARRIVALS, [arrival(), arrival("gl_headers", "2026-03-03T05:00:00Z")], format="json")
    held = BatchFile.objects.get(held=True)

    answer = api_client_for(operator).post(f"{HELD}{held.id}/release/", {"reason": "give up on day 1"}, format="json")

    assert answer.status_code == 200
    assert answer.json()["failed_window"]["status"] == "FAILED" and answer.json()["held_applied"] == 1
    assert api_client_for(operator).get(HELD).json()["results"] == []
