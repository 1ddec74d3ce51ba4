"""The transactions' totals that /metrics reads stay exactly a GROUP BY of the table, however they are fed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from monitoring.summaries.metrics import transaction_metrics
from monitoring.summaries.models import Transaction
from monitoring.summaries.services import FeedRefused, transactions_feed
from monitoring.summaries.totals import transaction_totals_move, transaction_totals_rebuild

pytestmark = pytest.mark.django_db


def item(reference: str, status: str = "PENDING", amount: str = "10.50", currency: str = "EUR", interface: str = "PAYMENT_ORIGINATOR") -> dict:
    record = {
        "interface": interface, "reference": reference, "amount": amount, "currency": currency, "status": status,
        "received_at": "2026-03-02T09:00:00Z",
    }
    if status != "PENDING":
        record["completed_at"] = "2026-03-02T09:05:00Z"
    return record


def scraped() -> dict[tuple, float]:
    counts, values = transaction_metrics()
    figures = {("count", *s.labels.values()): s.value for s in counts.samples if s.value}
    figures.update({("value", *s.labels.values()): s.value for s in values.samples if s.labels["currency"]})
    return figures


def grouped() -> dict[tuple, float]:
    figures: dict[tuple, float] = {}
    rows = Transaction.objects.values_list("interface__code", "status", "currency").annotate(n=Count("id"), value=Sum("amount"))
    for code, status, currency, count, value in rows.order_by():
        figures[("count", code, status)] = figures.get(("count", code, status), 0) + count
        figures[("value", code, status, currency)] = float(value)
    return figures


def test_a_mixed_feed_with_status_changes_scrapes_as_a_group_by_of_the_table():
    codes = ["PAYMENT_ORIGINATOR", "LIQUIDITY_SERVICE"]
    first = [item(f"t{i}", amount=f"{i}.25", currency=("EUR", "USD", "GBP")[i % 3], interface=codes[i % 2]) for i in range(30)]
    transactions_feed(items=first)
    assert scraped() == grouped()
    later = [
        # Finished ones, a replay that changes nothing, new ones that finish in the same feed.
        *[{**first[i], "status": "COMPLETED" if i % 2 else "FAILED", "completed_at": "2026-03-02T09:05:00Z"} for i in range(0, 30, 3)],
        first[1],
        item("n1"), item("n1", status="COMPLETED"), item("n2", status="FAILED", currency="USD"),
    ]
    transactions_feed(items=later)
    transactions_feed(items=later)  # the same again: every item unchanged
    assert scraped() == grouped()
    assert Transaction.objects.filter(status="PENDING").count() == 20  # ten of the thirty finished


def test_a_refused_feed_leaves_the_totals_as_they_were():
    transactions_feed(items=[item("a"), item("b", status="COMPLETED")])
    before = scraped()
    with pytest.raises(FeedRefused):
        transactions_feed(items=[item("c"), item("a", amount="99.00")])  # a contradiction refuses the whole feed
    assert scraped() == before == grouped()


def test_transactions_deleted_and_taken_out_of_the_totals_leave_them_exact():
    """What a deletion of transactions other than retention calls (retention leaves the totals: DOMAIN §9)."""
    transactions_feed(items=[item("a"), item("b", status="COMPLETED"), item("c", status="COMPLETED", amount="1.05")])
    gone = Transaction.objects.filter(status="COMPLETED", reference="b")
    transaction_totals_move(removed=list(gone.values_list("interface_id", "status", "currency", "amount")))
    gone.delete()
    assert scraped() == grouped()
    assert grouped()[("value", "PAYMENT_ORIGINATOR", "COMPLETED", "EUR")] == float(Decimal("1.05"))


def test_rows_written_around_the_feed_are_counted_by_a_rebuild():
    transactions_feed(items=[item("a"), item("b", status="COMPLETED")])
    Transaction.objects.filter(reference="a").update(amount=Decimal("3.00"))  # as a restore or a benchmark would
    transaction_totals_rebuild()
    assert scraped() == grouped()
