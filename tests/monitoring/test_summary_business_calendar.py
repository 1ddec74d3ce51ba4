"""Summary tasks on a business calendar: nothing outside business time, then ONE summary for the gap."""

from __future__ import annotations

import datetime as dt

import pytest

from monitoring.summaries.models import MonitoredInterface, ServiceSummary
from monitoring.summaries.services import transactions_feed
from portal import clock
from portal.models import OutboundMessage
from portal.validation import schema_errors
from scheduling.scheduler.calendars import calendar_group_create
from scheduling.scheduler.heartbeat import heartbeat_tick
from scheduling.scheduler.models import Subtype, TaskState
from scheduling.scheduler.services import scheduler_task_create

pytestmark = pytest.mark.django_db


def at(text: str) -> dt.datetime:
    instant = clock.parse_instant(text)
    clock.set_now(instant)
    return instant


def hourly_ticks(start: str, end: str):
    instant, stop = clock.parse_instant(start), clock.parse_instant(end)
    while instant <= stop:
        clock.set_now(instant)
        heartbeat_tick()
        instant += dt.timedelta(hours=1)


@pytest.fixture
def weekday_task(db):
    # Friday 2026-03-06 is a business day; Saturday and Sunday are the weekend;
    # Monday 2026-03-09 is a holiday; business hours 08:00-18:00 UTC.
    group = calendar_group_create(
        actor="test",
        name="WEEKDAYS",
        timezone="UTC",
        weekend_days=[6, 7],
        entries=[{"date": dt.date(2026, 3, 9), "description": "bank holiday"}],
        schedule_entries=[{"type_code": "DAY", "open_time": dt.time(8), "close_time": dt.time(18)}],
    )
    at("2026-03-06T16:00:00Z")
    return scheduler_task_create(
        actor="test",
        name="hosted-summary",
        subtype=Subtype.HOSTED_SERVICE_MONITOR,
        interval_seconds=3600,
        interfaces=[MonitoredInterface.objects.get(code="PAYMENT_ORIGINATOR")],
        calendar_groups=[group],
    )


def feed(reference: str, amount: str, status: str, received: str, completed: str | None = None) -> None:
    transactions_feed(
        items=[
            {
                "interface": "PAYMENT_ORIGINATOR",
                "reference": reference,
                "amount": amount,
                "currency": "EUR",
                "status": status,
                "received_at": received,
                "completed_at": completed,
            }
        ]
    )


def test_weekend_and_holiday_emit_nothing_and_the_next_business_interval_covers_the_gap_once(weekday_task):
    at("2026-03-06T17:00:00Z")
    heartbeat_tick()  # Friday 17:00: inside business time, covers [16:00, 17:00)
    assert ServiceSummary.objects.filter(event="FTMHostedServiceEndSummary").count() == 1

    # Business over the weekend and the holiday, timestamped as it happened.
    feed("W1", "100.00", "PENDING", "2026-03-07T10:00:00Z")
    feed("W2", "250.50", "COMPLETED", "2026-03-07T11:00:00Z", "2026-03-08T09:00:00Z")
    feed("W3", "40.00", "FAILED", "2026-03-09T12:00:00Z", "2026-03-09T12:30:00Z")

    hourly_ticks("2026-03-06T18:00:00Z", "2026-03-10T07:00:00Z")  # Friday evening to Tuesday 07:00

    weekday_task.refresh_from_db()
    assert ServiceSummary.objects.filter(event="FTMHostedServiceEndSummary").count() == 1
    assert weekday_task.state == TaskState.ACTIVE
    assert weekday_task.next_timeout_at == clock.parse_instant("2026-03-10T08:00:00Z")

    at("2026-03-10T08:00:00Z")
    heartbeat_tick()

    gap = ServiceSummary.objects.filter(event="FTMHostedServiceEndSummary").order_by("interval_end").last()
    assert ServiceSummary.objects.filter(event="FTMHostedServiceEndSummary").count() == 2
    assert (gap.interval_start, gap.interval_end) == (
        clock.parse_instant("2026-03-06T17:00:00Z"),
        clock.parse_instant("2026-03-10T08:00:00Z"),
    )
    assert gap.totals == [
        {
            "currency": "EUR",
            "pending_count": 1,
            "pending_value": "100.00",
            "completed_count": 1,
            "completed_value": "250.50",
            "failed_count": 1,
        }
    ]
    message = OutboundMessage.objects.get(id=gap.message_id)
    assert message.payload["interval_start"] == "2026-03-06T17:00:00Z"
    assert schema_errors(message.kind, message.payload) == []
    assert ServiceSummary.objects.filter(event="FTMHostedServiceBeginSummary").count() == 2


def test_interface_admin_page_shows_the_latest_figures(weekday_task, client, administrator):
    feed("F1", "12.34", "PENDING", "2026-03-06T16:10:00Z")
    at("2026-03-06T17:00:00Z")
    heartbeat_tick()
    interface = MonitoredInterface.objects.get(code="PAYMENT_ORIGINATOR")
    administrator.is_staff = True
    administrator.save()
    client.force_login(administrator)

    page = client.get(f"/admin/monitoring/monitoredinterface/{interface.id}/change/").content.decode()

    assert "FTMHostedServiceEndSummary" in page
    assert "12.34" in page and "EUR" in page
