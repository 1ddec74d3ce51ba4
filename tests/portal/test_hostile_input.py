"""Input refused before it costs anything (issue 14): a 400 naming the field, nothing written, never a 500.

Each hostile input is refused by a check that reads its shape (its exponent, its length, its
characters, its depth) before any arithmetic or query, so none of them can hold a worker.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from monitoring.batches.models import BatchFile
from monitoring.summaries.models import Transaction
from portal.models import AuditEntry, OutboundMessage
from scheduling.scheduler.models import SchedulerTask
from tests.monitoring.conftest import transaction_item

pytestmark = pytest.mark.django_db


def rows() -> tuple[int, int, int, int]:
    return Transaction.objects.count(), BatchFile.objects.count(), AuditEntry.objects.count(), OutboundMessage.objects.count()


@pytest.fixture
def demo(now, db):
    now("2026-03-02T09:00:00Z")
    call_command("load_demo", verbosity=0)


@pytest.fixture
def post(administrator, api_client_for):
    """POST a raw JSON text as an Administrator (who may post anything), checking that a refusal wrote nothing."""
    client = api_client_for(administrator)

    def send(url: str, body: str | dict | list, *, expect: int = 400):
        before = rows()
        text = body if isinstance(body, str) else json.dumps(body)
        answer = client.generic("POST", url, text, content_type="application/json")
        assert answer.status_code == expect, (url, answer.status_code, answer.content[:500])
        if expect >= 400:
            assert rows() == before, f"{url}: a refused request wrote something"
        return answer

    return send


def field_named(answer, field: str) -> str:
    """The message a refusal gives for ``field``, wherever the endpoint puts it (DRF's keys, a feed's error list)."""
    body = answer.json()
    if field in body:
        return " ".join(body[field])
    messages = [error["message"] for error in body.get("errors", []) if error.get("field") == field]
    assert messages, f"no error names {field}: {body}"
    return " ".join(messages)


@pytest.mark.parametrize(
    "amount",
    ["1e999999999", "1" * 5000, "1e99999999999", "-1e999999999"],
)
def test_an_amount_with_a_huge_exponent_or_length_as_a_json_number_is_refused_by_its_shape(amount, post):
    answer = post("/api/v1/transactions/", f'[{{"interface": "PAYMENT_ORIGINATOR", "reference": "X", "amount": {amount}, '
                  '"currency": "EUR", "status": "PENDING", "received_at": "2026-03-02T09:00:00Z"}]')
    # Refused for its exponent or length (the message says so), not after formatting a billion digits.
    assert any(word in field_named(answer, "amount") for word in ("out of range", "too long", "negative", "not a decimal"))


@pytest.mark.parametrize(
    ("amount", "why"),
    [("1e999999999", "not a decimal number"), ("١٢٣", "ASCII digits"), ("１２３", "ASCII digits"), ("9" * 200, "too long"), (" 12.50", "not a decimal")],
)
def test_an_amount_string_of_other_digits_or_an_exponent_is_refused(amount, why, post):
    answer = post("/api/v1/transactions/", [transaction_item("X", amount=amount)])
    assert why in field_named(answer, "amount")


def test_an_amount_in_ascii_digits_is_still_taken(post):
    post("/api/v1/transactions/", [transaction_item("X", amount="123.45")], expect=201)
    assert str(Transaction.objects.get().amount).startswith("123.45")


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800", "a\\udfffb"])
@pytest.mark.parametrize(
    ("url", "template", "field"),
    [
        ("/api/v1/arrivals/", '{{"tenant": "acme{bad}", "source": "gl_lines", "extract_timestamp": "2026-03-02T08:00:00Z"}}', "tenant"),
        ("/api/v1/arrivals/", '[{{"tenant": "acme", "source": "gl{bad}", "extract_timestamp": "2026-03-02T08:00:00Z"}}]', "source"),
        ("/api/v1/arrivals/", '{{"tenant": "acme", "source": "gl_lines", "extract_timestamp": "2026-03-02T08:00:00Z", "batch_ref": "r{bad}"}}', "batch_ref"),
        ("/api/v1/transactions/", '[{{"interface": "PAYMENT_ORIGINATOR", "reference": "R{bad}", "amount": "1.00", "currency": "EUR", '
         '"status": "PENDING", "received_at": "2026-03-02T09:00:00Z"}}]', "reference"),
        ("/api/v1/calendar-groups/", '{{"name": "N{bad}", "timezone": "UTC"}}', "name"),
    ],
)
def test_nul_and_lone_surrogates_are_refused_in_every_text_field_naming_it(url, template, field, bad, demo, post):
    answer = post(url, template.format(bad=bad))
    assert "NUL" in field_named(answer, field)


def test_a_nul_in_a_key_is_refused_too(demo, post):
    post("/api/v1/arrivals/", '{"tenant": "acme", "source": "gl_lines", "extract_timestamp": "2026-03-02T08:00:00Z", "x\\u0000": 1}')


@pytest.mark.parametrize("url", ["/api/v1/arrivals/", "/api/v1/transactions/", "/api/v1/calendar-groups/", "/api/v1/scheduler/shutdown/"])
def test_json_nested_a_thousand_deep_is_refused(url, post):
    for body in ("[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000, '{"reason": ' + "[" * 40 + "]" * 40 + "}"):
        answer = post(url, body)
        assert "nested deeper" in json.dumps(answer.json())


@pytest.mark.parametrize("route", ["/api/v1/transactions/", "/api/v1/summaries/", "/api/v1/audit/"])
@pytest.mark.parametrize("offset", ["+16:00", "-23:59", "+15:60"])
def test_time_filters_with_an_offset_beyond_1559_are_a_400_naming_the_filter(route, offset, viewer, api_client_for):
    answer = api_client_for(viewer).get(route, {"since": f"2026-03-02T09:00:00{offset}"})
    assert answer.status_code == 400 and "since" in answer.json()


def test_a_time_filter_within_1559_is_taken(viewer, api_client_for):
    assert api_client_for(viewer).get("/api/v1/transactions/", {"since": "2026-03-02T09:00:00+15:59"}).status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/batch-windows/abc/fail/", "/api/v1/held-arrivals/1e3/release/", "/api/v1/batch-windows/%20/fail/"])
def test_a_non_numeric_id_in_a_window_command_is_a_404(url, operator, api_client_for):
    answer = api_client_for(operator).post(url, {"reason": "test"}, format="json")
    assert answer.status_code == 404 and answer["Content-Type"] == "application/json"


def test_suspend_refuses_a_resume_time_without_an_offset(demo, operator, api_client_for):
    task = SchedulerTask.objects.order_by("id").first()
    answer = api_client_for(operator).post(
        f"/api/v1/scheduler-tasks/{task.id}/suspend/", {"reason": "maintenance", "resume_at": "2026-03-03T10:00:00"}, format="json"
    )
    assert answer.status_code == 400 and "offset" in " ".join(answer.json()["resume_at"])
    task.refresh_from_db()
    assert task.state != "SUSPENDED"


@pytest.mark.parametrize(
    "query",
    [{"page_size": "lots"}, {"page_size": "0"}, {"page_size": "5000"}, {"cursor": "not-a-cursor"}, {"held": "perhaps"}],
)
def test_a_query_parameter_that_is_not_one_is_refused_not_ignored(query, viewer, api_client_for):
    answer = api_client_for(viewer).get("/api/v1/arrivals/", query)
    assert answer.status_code == 400 and set(query) <= set(answer.json())


def test_a_10000_item_feed_of_27_mb_is_taken(feeder, api_client_for):
    items = [transaction_item(f"{index:08d}-" + "r" * 111, amount=f"{index}.25") for index in range(10_000)]
    body = json.dumps(items)
    assert len(body) > 2_700_000
    answer = api_client_for(feeder).generic("POST", "/api/v1/transactions/", body, content_type="application/json")
    assert answer.status_code == 201, answer.content[:300]
    assert len(answer.json()) == 10_000 and Transaction.objects.count() == 10_000


def test_a_body_over_the_limit_is_a_json_413_naming_the_limit(feeder, api_client_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000
    body = json.dumps([transaction_item(f"R{index}") for index in range(10_000)])
    answer = api_client_for(feeder).generic("POST", "/api/v1/transactions/", body, content_type="application/json")
    assert answer.status_code == 413 and answer["Content-Type"] == "application/json"
    assert "1,000,000" in answer.json()["detail"] and answer.json()["limit_bytes"] == 1_000_000
    assert Transaction.objects.count() == 0


def test_a_form_body_is_refused_the_api_takes_json(feeder, api_client_for):
    answer = api_client_for(feeder).post("/api/v1/transactions/", transaction_item("F", completed_at=""), format="multipart")
    assert answer.status_code == 415 and Transaction.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/scheduler/shutdown/", {"reason": 0}, "reason"),
        ("/api/v1/scheduler-tasks/", {"name": "t", "subtype": "BATCH_MONITOR", "interval_seconds": "60", "enabled": True}, "interval_seconds"),
        ("/api/v1/scheduler-tasks/", {"name": "t", "subtype": "BATCH_MONITOR", "interval_seconds": 60, "enabled": 0}, "enabled"),
        ("/api/v1/interfaces/", {"code": "X", "name": "x", "direction": "HOSTED", "outbound_channel": 0}, "outbound_channel"),
        ("/api/v1/calendar-groups/", {"name": "G", "entries": [{"date": "2026-03-02", "description": 0}]}, "entries"),
        ("/api/v1/calendar-groups/", {"name": "G", "weekend_days": ["6"]}, "weekend_days"),
        ("/api/v1/calendar-groups/", {"name": "G", "schedule_entries": [{"type_code": "A", "open_time": "07:00+01:00", "close_time": "18:00"}]}, "schedule_entries"),
        ("/api/v1/calendar-groups/", {"name": "G", "schedule_entries": [{"type_code": "A", "close_time": "18:00"}]}, "schedule_entries"),
    ],
)
def test_a_field_of_another_json_type_than_published_is_refused_naming_it(url, body, field, post):
    answer = post(url, body)
    assert field in answer.json(), answer.json()


def test_a_calendar_group_patch_still_needs_whole_entries(demo, administrator, api_client_for):
    from scheduling.scheduler.models import CalendarGroup

    group = CalendarGroup.objects.order_by("id").first()
    client = api_client_for(administrator)
    for body in ({"entries": [{"description": "no date"}]}, {"schedule_entries": [{"type_code": "A", "open_time": "07:00"}]}):
        answer = client.patch(f"/api/v1/calendar-groups/{group.id}/", body, format="json")
        assert answer.status_code == 400 and set(body) <= set(answer.json()), answer.content
