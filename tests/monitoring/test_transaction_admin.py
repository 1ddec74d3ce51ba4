"""The admin pages of transactions and summaries, and the demo transactions."""

from __future__ import annotations

import datetime as dt

import pytest

from monitoring.summaries.demo import load_transaction_demo
from monitoring.summaries.models import ServiceSummary, Transaction
from monitoring.summaries.services import transactions_feed
from monitoring.summaries.tasks import hosted_summary_action
from tests.monitoring.conftest import HOSTED, transaction_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def summaries(task_run, now):
    transactions_feed(items=[
        transaction_item("ADM-1", currency="JPY", amount="1500"),
        transaction_item("ADM-2", status="COMPLETED", completed_at="2026-03-02T10:30:00Z"),
    ])
    now("2026-03-02T11:00:00Z")
    hosted_summary_action(task_run("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", HOSTED, name="hosted-hourly"))


def test_the_transaction_list_filters_and_searches(admin_client, summaries):
    url = "/admin/monitoring/transaction/"
    page = admin_client.get(url, {"interface__id__exact": Transaction.objects.first().interface_id, "status__exact": "PENDING",
                                  "currency": "JPY", "q": "ADM"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "ADM-1" in text and "ADM-2" not in text
    assert ">1500<" in text  # the amount in the currency's minor units
    detail = admin_client.get(f"{url}{Transaction.objects.get(reference='ADM-1').pk}/change/")
    assert detail.status_code == 200
    assert admin_client.get(f"{url}add/").status_code == 403


def test_the_summary_admin_shows_the_figures_read_only(admin_client, summaries):
    url = "/admin/monitoring/servicesummary/"
    page = admin_client.get(url, {"event__exact": "FTMHostedServiceEndSummary"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "hosted-hourly" in text and "JPY: 1 pending 1500" in text
    end = ServiceSummary.objects.get(interface__code="PAYMENT_ORIGINATOR", event="FTMHostedServiceEndSummary")
    detail = admin_client.get(f"{url}{end.pk}/change/").content.decode()
    assert "<td>EUR</td>" in detail and '<td style="text-align:right">10.00</td>' in detail  # ADM-2 completed
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.post(f"{url}{end.pk}/delete/").status_code == 403


def test_the_demo_transactions_load_once_around_the_clock(now):
    instant = now("2026-03-02T10:00:00Z")

    first = load_transaction_demo()
    second = load_transaction_demo()

    assert first.startswith("400 demo transactions over 5 interfaces")
    assert second == "demo transactions already loaded"
    assert Transaction.objects.count() == 400
    assert Transaction.objects.values("interface").distinct().count() == 5
    assert Transaction.objects.values("currency").distinct().count() >= 5
    assert {row["status"] for row in Transaction.objects.values("status")} == {"PENDING", "COMPLETED", "FAILED"}
    received = Transaction.objects.order_by("received_at").values_list("received_at", flat=True)
    assert instant - dt.timedelta(hours=22) <= received.first() and received.last() <= instant + dt.timedelta(hours=2)
