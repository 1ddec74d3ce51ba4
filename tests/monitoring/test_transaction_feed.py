from __future__ import annotations

import json
from decimal import Decimal

import pytest

from monitoring.summaries.models import Transaction
from portal.clock import parse_instant
from tests.monitoring.conftest import transaction_item

pytestmark = pytest.mark.django_db

URL = "/api/v1/transactions/"


@pytest.fixture
def feed(feeder, api_client_for):
    client = api_client_for(feeder)
    return lambda payload: client.post(URL, payload, format="json")


def stored() -> list[tuple]:
    return list(
        Transaction.objects.order_by("id").values_list(
            "interface__code", "reference", "amount", "currency", "status", "received_at", "completed_at", "updated_at"
        )
    )


def test_a_list_is_created_in_order_with_one_answer_per_item(feed, now):
    now("2026-03-02T10:00:00Z")
    answer = feed([
        transaction_item("A-1"),
        transaction_item("A-2", interface="LIQUIDITY_SERVICE", amount="1500", currency="JPY"),
        transaction_item("A-3", status="COMPLETED", completed_at="2026-03-02T09:30:00+00:00"),
    ])

    assert answer.status_code == 201
    body = answer.json()
    rows = {t.reference: t for t in Transaction.objects.select_related("interface")}
    assert body == [{"id": rows[ref].id, "reference": ref, "result": "created"} for ref in ("A-1", "A-2", "A-3")]
    assert rows["A-2"].interface.code == "LIQUIDITY_SERVICE" and rows["A-2"].amount == Decimal(1500)
    assert rows["A-3"].status == "COMPLETED" and rows["A-3"].completed_at.isoformat() == "2026-03-02T09:30:00+00:00"
    assert rows["A-1"].currency == "EUR" and rows["A-1"].received_at.isoformat() == "2026-03-02T09:00:00+00:00"
    assert rows["A-1"].created_at == rows["A-1"].updated_at == parse_instant("2026-03-02T10:00:00Z")


def test_one_object_gets_one_answer(feed):
    answer = feed(transaction_item("ONE"))
    assert answer.status_code == 201
    assert answer.json() == {"id": Transaction.objects.get().id, "reference": "ONE", "result": "created"}


def test_status_moving_forward_updates_the_transaction(feed, now):
    now("2026-03-02T10:00:00Z")
    first = feed([transaction_item("P-1"), transaction_item("P-2")]).json()
    now("2026-03-02T10:05:00Z")
    answer = feed([
        transaction_item("P-1", status="COMPLETED", completed_at="2026-03-02T09:10:00Z"),
        transaction_item("P-2", status="FAILED", completed_at="2026-03-02T09:20:00Z"),
    ])
    assert answer.status_code == 200
    assert [(a["id"], a["result"]) for a in answer.json()] == [(first[0]["id"], "updated"), (first[1]["id"], "updated")]
    assert dict(Transaction.objects.values_list("reference", "status")) == {"P-1": "COMPLETED", "P-2": "FAILED"}
    assert {t.updated_at for t in Transaction.objects.all()} == {parse_instant("2026-03-02T10:05:00Z")}
    assert {t.created_at for t in Transaction.objects.all()} == {parse_instant("2026-03-02T10:00:00Z")}


def test_the_same_reference_twice_in_one_request_is_applied_in_order(feed):
    answer = feed([
        transaction_item("TWICE"),
        transaction_item("TWICE", status="COMPLETED", completed_at="2026-03-02T09:05:00Z"),
        transaction_item("TWICE"),
    ])
    assert answer.status_code == 201
    results = answer.json()
    assert [r["result"] for r in results] == ["created", "updated", "unchanged"]
    assert len({r["id"] for r in results}) == 1
    row = Transaction.objects.get()
    assert row.status == "COMPLETED" and row.completed_at.isoformat() == "2026-03-02T09:05:00+00:00"


def test_the_same_reference_on_two_interfaces_is_two_transactions(feed):
    answer = feed([transaction_item("SHARED"), transaction_item("SHARED", interface="REPAIR_SERVICE")])
    assert [r["result"] for r in answer.json()] == ["created", "created"]
    assert Transaction.objects.count() == 2


def test_replaying_the_same_feed_changes_nothing(feed, now):
    batch = [
        transaction_item("R-1"),
        transaction_item("R-2", status="COMPLETED", completed_at="2026-03-02T09:30:00Z"),
        transaction_item("R-3", status="FAILED", completed_at="2026-03-02T09:40:00Z", currency="BHD", amount="1.250"),
    ]
    now("2026-03-02T10:00:00Z")
    feed(batch)
    before = stored()

    now("2026-03-02T11:00:00Z")
    answer = feed(batch)

    assert answer.status_code == 200
    assert [r["result"] for r in answer.json()] == ["unchanged"] * 3
    assert stored() == before


def test_an_older_feed_changes_nothing(feed, now):
    now("2026-03-02T10:00:00Z")
    feed([
        transaction_item("O-1", status="COMPLETED", completed_at="2026-03-02T09:30:00Z"),
        transaction_item("O-2", status="FAILED", completed_at="2026-03-02T09:31:00Z"),
    ])
    before = stored()

    now("2026-03-02T11:00:00Z")
    answer = feed([transaction_item("O-1"), transaction_item("O-2")])  # the PENDING records of the morning

    assert [r["result"] for r in answer.json()] == ["unchanged", "unchanged"]
    assert stored() == before


@pytest.mark.parametrize(
    ("later", "field"),
    [
        ({"status": "FAILED", "completed_at": "2026-03-02T09:30:00Z"}, "status"),
        ({"amount": "10.01"}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"completed_at": "2026-03-02T09:45:00Z"}, "completed_at"),
        ({"received_at": "2026-03-02T08:00:00Z"}, "received_at"),
    ],
)
def test_a_contradiction_is_refused_and_nothing_of_the_request_is_written(feed, later, field):
    completed = {"status": "COMPLETED", "completed_at": "2026-03-02T09:30:00Z"}
    feed(transaction_item("C-1", **completed))
    before = stored()

    answer = feed([transaction_item("NEW-1"), transaction_item("C-1", **(completed | later))])

    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert [(e["index"], e["reference"], e["field"]) for e in errors] == [(1, "C-1", field)]
    assert "contradicts" in errors[0]["message"]
    assert stored() == before  # NEW-1 was not created either


def test_a_contradiction_inside_one_request_is_refused(feed):
    answer = feed([
        transaction_item("X", status="COMPLETED", completed_at="2026-03-02T09:30:00Z"),
        transaction_item("X", status="FAILED", completed_at="2026-03-02T09:30:00Z"),
    ])
    assert answer.status_code == 400
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(1, "status")]
    assert not Transaction.objects.exists()


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({"amount": "-5.00"}, "amount", "negative"),
        ({"amount": "abc"}, "amount", "not a decimal"),
        ({"amount": "1e3"}, "amount", "not a decimal"),
        ({"amount": "NaN"}, "amount", "not a decimal"),
        ({"amount": ""}, "amount", "required"),
        ({"amount": True}, "amount", "decimal string"),
        ({"amount": "10.005"}, "amount", "more decimals than EUR"),
        ({"amount": "1.5", "currency": "JPY"}, "amount", "more decimals than JPY"),
        ({"amount": "1" * 19}, "amount", "too large"),
        ({"currency": "EURO"}, "currency", "unknown ISO 4217 currency"),
        ({"currency": "XYZ"}, "currency", "unknown ISO 4217 currency"),
        ({"currency": "XAU"}, "currency", "unknown ISO 4217 currency"),
        ({"interface": "NO_SUCH_INTERFACE"}, "interface", "unknown interface"),
        ({"interface": None}, "interface", "required"),
        ({"status": "DONE"}, "status", "PENDING, COMPLETED or FAILED"),
        ({"received_at": "2026-03-02 09:00"}, "received_at", "no time zone"),
        ({"received_at": "yesterday"}, "received_at", "not an ISO-8601"),
        ({"status": "COMPLETED", "completed_at": "2026-03-02T08:59:59Z"}, "completed_at", "before received_at"),
        ({"status": "COMPLETED", "completed_at": None}, "completed_at", "required when the status is COMPLETED"),
        ({"status": "PENDING", "completed_at": "2026-03-02T09:30:00Z"}, "completed_at", "null while the status is PENDING"),
        ({"reference": "R" * 129}, "reference", "at most 128 characters"),
        ({"reference": 42}, "reference", "must be a string"),
        ({"amout": "10.00"}, "amout", "unknown field"),
    ],
)
def test_a_bad_item_refuses_the_request_naming_the_item_and_the_field(feed, bad, field, words):
    answer = feed([transaction_item("GOOD"), transaction_item("BAD", **bad)])

    assert answer.status_code == 400
    body = answer.json()
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, field)]
    assert words in body["errors"][0]["message"]
    assert "item 1" in body["detail"] and field in body["detail"]
    assert not Transaction.objects.exists()


def test_every_bad_item_is_named_at_once(feed):
    answer = feed([transaction_item("A", amount="x"), "not an object", transaction_item("C", currency="??")])
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(0, "amount"), (1, ""), (2, "currency")]


def test_more_than_ten_thousand_items_are_refused(feed):
    answer = feed([transaction_item(f"T-{i}") for i in range(10_001)])
    assert answer.status_code == 400
    assert "at most 10,000" in answer.json()["detail"]
    assert not Transaction.objects.exists()


def test_ten_thousand_items_in_one_request_are_applied(feed):
    answer = feed([transaction_item(f"BULK-{i:05d}", amount=f"{i}.25") for i in range(10_000)])
    assert answer.status_code == 201
    assert len(answer.json()) == 10_000
    assert Transaction.objects.count() == 10_000
    assert Transaction.objects.get(reference="BULK-09999").amount == Decimal("9999.25")


def test_a_body_that_is_not_a_list_or_object_is_refused(feed):
    assert feed("just text").status_code == 400


def test_an_amount_sent_as_a_json_number_is_kept_exactly(feeder, api_client_for):
    body = json.dumps([transaction_item("NUM", amount=None)]).replace('"amount": null', '"amount": 0.1')
    answer = api_client_for(feeder).post(URL, body, content_type="application/json")
    assert answer.status_code == 201
    assert Transaction.objects.get().amount == Decimal("0.1")


@pytest.mark.parametrize(
    ("role", "post_status", "get_status"),
    [("feeder", 201, 403), ("operator", 201, 200), ("administrator", 201, 200), ("viewer", 403, 200)],
)
def test_who_may_post_and_read_transactions(request, api_client_for, role, post_status, get_status):
    client = api_client_for(request.getfixturevalue(role))
    assert client.post(URL, transaction_item("PERM"), format="json").status_code == post_status
    assert client.get(URL).status_code == get_status


def test_anonymous_callers_get_401(api_client_for):
    assert api_client_for(None).post(URL, transaction_item("ANON"), format="json").status_code == 401
    assert api_client_for(None).get(URL).status_code == 401


def test_the_list_filters_by_interface_status_currency_and_time(feed, viewer, api_client_for):
    feed([
        transaction_item("F-1", received_at="2026-03-02T08:00:00Z"),
        transaction_item("F-2", received_at="2026-03-02T09:00:00Z", currency="JPY", amount="1500"),
        transaction_item("F-3", received_at="2026-03-02T10:00:00Z", interface="REPAIR_SERVICE", amount="1.5"),
        transaction_item("F-4", received_at="2026-03-02T10:00:00Z", status="COMPLETED", completed_at="2026-03-02T10:30:00Z"),
    ])
    client = api_client_for(viewer)

    def refs(**params) -> list[str]:
        answer = client.get(URL, params)
        assert answer.status_code == 200, answer.json()
        return [t["reference"] for t in answer.json()["results"]]

    assert refs(interface="REPAIR_SERVICE") == ["F-3"]
    assert refs(status="COMPLETED") == ["F-4"]
    assert refs(currency="JPY") == ["F-2"]
    assert refs(since="2026-03-02T09:00:00Z", until="2026-03-02T10:00:00Z") == ["F-2"]
    assert refs(completed_since="2026-03-02T10:30:00Z") == ["F-4"]
    assert client.get(URL, {"interface": "NOPE"}).status_code == 400

    listed = client.get(URL, {"currency": "JPY"}).json()["results"][0]
    assert listed["interface"] == "PAYMENT_ORIGINATOR"
    assert listed["amount"] == "1500" and listed["received_at"] == "2026-03-02T09:00:00Z"
    assert {"id", "reference", "currency", "status", "completed_at", "created_at", "updated_at"} <= set(listed)
    assert client.get(URL, {"reference": "F-3"}).json()["results"][0]["amount"] == "1.50"


def test_a_listed_transaction_can_be_fed_back_unchanged(feed, operator, api_client_for):
    feed(transaction_item("ROUND", status="COMPLETED", completed_at="2026-03-02T09:30:00Z"))
    client = api_client_for(operator)
    listed = client.get(URL).json()["results"]
    answer = client.post(URL, listed, format="json")
    assert answer.status_code == 200
    assert answer.json()[0]["result"] == "unchanged"
