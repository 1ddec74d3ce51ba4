"""The figures of the summary events: what counts as pending, completed and failed in [start, end)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monitoring.summaries.models import MonitoredInterface, ServiceSummary, Transaction
from monitoring.summaries.services import transactions_feed
from monitoring.summaries.tasks import hosted_summary_action, invoked_summary_action
from portal.clock import parse_instant
from tests.monitoring.conftest import transaction_item

pytestmark = pytest.mark.django_db

START, END = "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"


def pay(reference: str, amount: str, received: str, status: str = "PENDING", finished: str | None = None, **extra) -> dict:
    return transaction_item(
        reference,
        amount=amount,
        received_at=f"2026-03-02T{received}Z",
        status=status,
        completed_at=f"2026-03-02T{finished}Z" if finished else None,
        **extra,
    )


KNOWN_SET = [
    # EUR on the edges of [10:00, 11:00)
    pay("E1", "10.00", "09:00:00"),  # pending
    pay("E2", "20.00", "09:00:00", "COMPLETED", "10:00:00"),  # completed exactly at the start: inside
    pay("E3", "30.00", "09:30:00", "COMPLETED", "11:00:00"),  # completed exactly at the end: still pending at the end
    pay("E4", "40.00", "10:59:59.999999"),  # received just before the end: pending
    pay("E5", "50.00", "11:00:00"),  # received exactly at the end: not yet there
    pay("E6", "60.00", "09:00:00", "COMPLETED", "09:59:59"),  # completed before the start: not in this interval
    pay("E7", "70.00", "10:15:00", "FAILED", "10:20:00"),  # failed inside
    pay("E8", "80.00", "10:15:00", "FAILED", "11:00:00"),  # fails at the end: pending at the end
    pay("E9", "90.00", "08:00:00", "FAILED", "10:00:00"),  # failed exactly at the start: inside
    # JPY has no minor unit, BHD three
    pay("J1", "1500", "09:00:00", "COMPLETED", "10:30:00", currency="JPY"),
    pay("J2", "250", "10:10:00", currency="JPY"),
    pay("B1", "1.250", "10:00:00", currency="BHD"),
    pay("B2", "0.005", "09:00:00", currency="BHD"),
    # USD finished before the interval: five zero figures, left out
    pay("U1", "99.99", "08:00:00", "COMPLETED", "09:00:00", currency="USD"),
    # another interface's business is not PAYMENT_ORIGINATOR's
    pay("L1", "5.00", "10:00:00", interface="LIQUIDITY_SERVICE"),
]

EXPECTED_PAYMENT_ORIGINATOR = [
    {"currency": "BHD", "pending_count": 2, "pending_value": "1.255", "completed_count": 0, "completed_value": "0.000", "failed_count": 0},
    {"currency": "EUR", "pending_count": 4, "pending_value": "160.00", "completed_count": 1, "completed_value": "20.00", "failed_count": 2},
    {"currency": "JPY", "pending_count": 1, "pending_value": "250", "completed_count": 1, "completed_value": "1500", "failed_count": 0},
]


def end_summary(interface: str, end: str = END) -> ServiceSummary:
    return ServiceSummary.objects.get(
        interface__code=interface, interval_end=end, event__in=["FTMHostedServiceEndSummary", "FTMInvokedServiceSummary"]
    )


def test_figures_of_a_known_set_with_transactions_on_the_interval_edges(task_run, now):
    transactions_feed(items=KNOWN_SET)
    now(END)

    hosted_summary_action(task_run(START, END))

    assert end_summary("PAYMENT_ORIGINATOR").totals == EXPECTED_PAYMENT_ORIGINATOR
    assert end_summary("BATCH_PAYMENT_ORIGINATOR").totals == []  # nothing to report, still a message


def test_figures_are_computed_per_interface_in_one_query(task_run, django_assert_max_num_queries):
    transactions_feed(items=KNOWN_SET)
    interfaces = MonitoredInterface.objects.filter(code__in=["PAYMENT_ORIGINATOR", "LIQUIDITY_SERVICE"])
    run = task_run(START, END)

    with django_assert_max_num_queries(1):
        figures = Transaction.objects.filter(interface__in=interfaces).summary_figures(
            start=run.interval_start, end=run.interval_end
        )

    by_code = {MonitoredInterface.objects.get(id=i).code: totals for i, totals in figures.items()}
    assert [t.as_json() for t in by_code["PAYMENT_ORIGINATOR"]] == EXPECTED_PAYMENT_ORIGINATOR
    assert by_code["LIQUIDITY_SERVICE"][0].pending_value == Decimal("5.00")


def test_sums_are_exact_decimals(task_run, now):
    transactions_feed(items=[
        pay("D1", "0.10", "09:00:00", "COMPLETED", "10:01:00"),
        pay("D2", "0.20", "09:00:00", "COMPLETED", "10:02:00"),
        pay("D3", "0.10", "09:00:00", "COMPLETED", "10:03:00"),
        pay("BIG", "123456789012.34", "09:00:00"),
        pay("SMALL", "0.01", "09:00:00"),
        pay("K1", "0.0001", "09:00:00", currency="CLF"),
        pay("K2", "0.0002", "09:00:00", currency="CLF"),
    ])
    now(END)

    hosted_summary_action(task_run(START, END))

    totals = {row["currency"]: row for row in end_summary("PAYMENT_ORIGINATOR").totals}
    assert totals["EUR"]["completed_value"] == "0.40"
    assert totals["EUR"]["pending_value"] == "123456789012.35"
    assert totals["CLF"]["pending_value"] == "0.0003"


def test_figures_follow_the_transactions_timestamps_not_when_the_feed_delivered_them(task_run, now):
    # The 10:00-11:00 summary runs before the feed reports that T1 completed at 10:30.
    transactions_feed(items=[pay("T1", "100.00", "09:00:00")])
    now(END)
    hosted_summary_action(task_run(START, END))
    now("2026-03-02T11:30:00Z")
    transactions_feed(items=[pay("T1", "100.00", "09:00:00", "COMPLETED", "10:30:00")])
    # ...and a completion at 12:15 is already known at 11:30.
    transactions_feed(items=[pay("T2", "7.00", "11:10:00", "COMPLETED", "12:15:00")])

    now("2026-03-02T12:00:00Z")
    hosted_summary_action(task_run(END, "2026-03-02T12:00:00Z"))

    first = end_summary("PAYMENT_ORIGINATOR").totals
    second = end_summary("PAYMENT_ORIGINATOR", "2026-03-02T12:00:00Z").totals
    assert first == [_eur(pending=(1, "100.00"))]
    # T1 completed at 10:30, outside [11:00, 12:00): neither pending nor completed here; T2 is pending at 12:00.
    assert second == [_eur(pending=(1, "7.00"))]


def test_one_action_over_a_weekend_gap_gives_one_summary_per_interface_with_the_whole_gap(task_run, now):
    friday, monday = "2026-03-06T17:00:00Z", "2026-03-09T09:00:00Z"
    transactions_feed(items=[
        transaction_item("SAT", received_at="2026-03-07T08:00:00Z", status="COMPLETED", completed_at="2026-03-07T09:00:00Z"),
        transaction_item("SUN", received_at="2026-03-08T08:00:00Z", status="COMPLETED", completed_at="2026-03-08T20:00:00Z"),
        transaction_item("SUNF", received_at="2026-03-08T08:00:00Z", status="FAILED", completed_at="2026-03-08T21:00:00Z"),
        transaction_item("OPEN", received_at="2026-03-08T22:00:00Z"),
        transaction_item("INV", interface="REPAIR_SERVICE", received_at="2026-03-07T08:00:00Z", status="COMPLETED",
                         completed_at="2026-03-07T09:00:00Z", currency="GBP", amount="3.50"),
    ])
    now(monday)

    hosted_summary_action(task_run(friday, monday))
    invoked_summary_action(task_run(friday, monday, ("LIQUIDITY_SERVICE", "REPAIR_SERVICE", "PAYMENTS_GATEWAY")))

    summaries = ServiceSummary.objects.filter(event__in=["FTMHostedServiceEndSummary", "FTMInvokedServiceSummary"])
    assert summaries.count() == 5
    assert set(summaries.values_list("interval_start", "interval_end")) == {(parse_instant(friday), parse_instant(monday))}
    assert end_summary("PAYMENT_ORIGINATOR", monday).totals == [
        {"currency": "EUR", "pending_count": 1, "pending_value": "10.00", "completed_count": 2, "completed_value": "20.00", "failed_count": 1}
    ]
    assert end_summary("REPAIR_SERVICE", monday).totals == [
        {"currency": "GBP", "pending_count": 0, "pending_value": "0.00", "completed_count": 1, "completed_value": "3.50", "failed_count": 0}
    ]


def _eur(pending=(0, "0.00"), completed=(0, "0.00"), failed=0) -> dict:
    return {
        "currency": "EUR",
        "pending_count": pending[0],
        "pending_value": pending[1],
        "completed_count": completed[0],
        "completed_value": completed[1],
        "failed_count": failed,
    }


@pytest.mark.postgres
def test_sums_of_the_largest_amounts_are_exact_on_postgresql(task_run, now):
    transactions_feed(items=[
        pay("MAX1", "999999999999999999.99", "09:00:00"),
        pay("MAX2", "999999999999999999.99", "09:00:00"),
        pay("CENT", "0.01", "09:00:00"),
    ])
    now(END)

    hosted_summary_action(task_run(START, END))

    assert end_summary("PAYMENT_ORIGINATOR").totals[0]["pending_value"] == "1999999999999999999.99"
