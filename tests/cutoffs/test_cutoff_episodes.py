"""Cut-offs on the clock (DOMAIN §8): CUTOFF_AT_RISK from the warning time, CUTOFF_MISSED at the cut-off.

TARGET2 customer: 17:00 Europe/Berlin, 30 warning minutes; on Monday 2026-03-02 (CET) that is
16:00 UTC, the warning from 15:30 UTC.
"""

from __future__ import annotations

import datetime as dt

import pytest

from portal.alerts.models import AlertEpisode
from portal.alerts.services import alert_acknowledge
from tests.conftest import make_user
from tests.cutoffs.conftest import episodes, feed

pytestmark = pytest.mark.django_db

EUR = "cutoff:TARGET2 customer:2026-03-02:EUR"
USD = "cutoff:TARGET2 customer:2026-03-02:USD"


@pytest.fixture
def pending(make_cutoff, now):
    """Two EUR payments (350.50) and one USD (99.99) pending; one EUR finished before the warning."""
    now("2026-03-02T08:00:00Z")
    make_cutoff()
    feed(
        ("P1", "200.25", "EUR", "2026-03-02T09:00:00Z", None),
        ("P2", "150.25", "EUR", "2026-03-02T10:00:00Z", None),
        ("P3", "99.99", "USD", "2026-03-02T11:00:00Z", None),
        ("P4", "1000.00", "EUR", "2026-03-02T09:30:00Z", "2026-03-02T12:00:00Z"),
    )


def complete(reference: str, amount: str, currency: str, received: str, at: str) -> None:
    feed((reference, amount, currency, received, at))


def test_at_risk_opens_at_the_warning_time_with_the_exact_pending_per_currency(pending, tick):
    tick("2026-03-02T15:29:00Z")
    assert episodes("CUTOFF_AT_RISK") == {}

    tick("2026-03-02T15:30:00Z")
    assert episodes("CUTOFF_AT_RISK") == {EUR: "2 pending, EUR 350.50", USD: "1 pending, USD 99.99"}
    assert AlertEpisode.objects.filter(kind="CUTOFF_AT_RISK", subject=EUR).get().interface == "PAYMENT_ORIGINATOR"


def test_at_risk_resolves_when_the_last_pending_completes_before_the_cut_off(pending, tick):
    tick("2026-03-02T15:30:00Z")
    complete("P1", "200.25", "EUR", "2026-03-02T09:00:00Z", "2026-03-02T15:35:00Z")
    tick("2026-03-02T15:36:00Z")
    assert episodes("CUTOFF_AT_RISK")[EUR] == "1 pending, EUR 150.25"

    complete("P2", "150.25", "EUR", "2026-03-02T10:00:00Z", "2026-03-02T15:40:00Z")
    complete("P3", "99.99", "USD", "2026-03-02T11:00:00Z", "2026-03-02T15:41:00Z")
    tick("2026-03-02T15:42:00Z")
    assert episodes("CUTOFF_AT_RISK") == {}
    assert set(episodes("CUTOFF_AT_RISK", state="RESOLVED")) == {EUR, USD}

    tick("2026-03-02T16:00:00Z")
    assert episodes("CUTOFF_MISSED", state=None) == {}


def test_pending_left_at_the_cut_off_opens_missed_with_what_is_left(pending, tick):
    tick("2026-03-02T15:30:00Z")
    complete("P3", "99.99", "USD", "2026-03-02T11:00:00Z", "2026-03-02T15:50:00Z")
    tick("2026-03-02T16:00:00Z")

    assert episodes("CUTOFF_MISSED") == {EUR: "2 pending, EUR 350.50"}
    assert episodes("CUTOFF_AT_RISK") == {}  # the cut-off has come: the warning is over
    tick("2026-03-02T16:01:00Z")
    assert AlertEpisode.objects.filter(kind="CUTOFF_MISSED").count() == 1


def test_missed_resolves_when_every_transaction_left_is_finished(pending, tick):
    tick("2026-03-02T16:00:00Z")
    feed(("P5", "5.00", "EUR", "2026-03-02T16:30:00Z", None))  # after the cut-off: not the missed one's
    complete("P1", "200.25", "EUR", "2026-03-02T09:00:00Z", "2026-03-02T16:10:00Z")
    tick("2026-03-02T16:11:00Z")
    assert EUR in episodes("CUTOFF_MISSED")

    complete("P2", "150.25", "EUR", "2026-03-02T10:00:00Z", "2026-03-02T16:40:00Z")
    tick("2026-03-02T16:41:00Z")
    assert EUR not in episodes("CUTOFF_MISSED")
    assert USD in episodes("CUTOFF_MISSED")


def test_an_acknowledged_missed_cut_off_is_resolved(pending, tick):
    tick("2026-03-02T16:00:00Z")
    episode = AlertEpisode.objects.get(kind="CUTOFF_MISSED", subject=EUR)
    alert_acknowledge(actor=make_user("op", "Operator"), alert=episode, reason="sent by hand to the central bank")
    tick("2026-03-02T16:01:00Z")
    assert EUR not in episodes("CUTOFF_MISSED")


@pytest.mark.parametrize("day", ["2026-03-07", "2026-03-08", "2026-03-04"], ids=["saturday", "sunday", "calendar entry"])
def test_no_cut_off_fires_on_a_weekend_day_or_a_calendar_entrys_date(make_cutoff, now, tick, day):
    now(f"{day}T08:00:00Z")
    make_cutoff()
    feed(("P1", "10.00", "EUR", f"{day}T09:00:00Z", None))
    for at in ("15:30", "15:59", "16:00", "17:00"):
        tick(f"{day}T{at}:00Z")
    assert not AlertEpisode.objects.filter(kind__startswith="CUTOFF").exists()


def test_a_cut_off_whose_effective_to_has_passed_fires_no_more(make_cutoff, now, tick):
    now("2026-03-02T08:00:00Z")
    make_cutoff(effective_to=dt.date(2026, 3, 2))
    feed(("P1", "10.00", "EUR", "2026-03-02T09:00:00Z", None))
    tick("2026-03-02T16:00:00Z")
    assert set(episodes("CUTOFF_MISSED")) == {EUR}

    for at in ("2026-03-03T15:30:00Z", "2026-03-03T16:00:00Z", "2026-03-05T16:00:00Z"):
        tick(at)
    assert set(episodes("CUTOFF_MISSED")) == {EUR}
    assert not AlertEpisode.objects.filter(subject__contains="2026-03-03").exists()


@pytest.mark.parametrize(
    "day, warning, cutoff",
    [
        ("2026-03-30", "14:30", "15:00"),  # the Monday after the spring change: CEST, UTC+2
        ("2026-10-26", "15:30", "16:00"),  # the Monday after the autumn change: CET, UTC+1
        ("2026-03-27", "15:30", "16:00"),  # the Friday before it: still CET
    ],
)
def test_daylight_saving_days_keep_local_17_00(make_cutoff, now, tick, day, warning, cutoff):
    now(f"{day}T06:00:00Z")
    make_cutoff()
    feed(("P1", "12.34", "EUR", f"{day}T07:00:00Z", None))
    subject = f"cutoff:TARGET2 customer:{day}:EUR"
    hour, minute = warning.split(":")
    tick(f"{day}T{hour}:{int(minute) - 1:02d}:00Z")
    assert episodes("CUTOFF_AT_RISK") == {}
    tick(f"{day}T{warning}:00Z")
    assert episodes("CUTOFF_AT_RISK") == {subject: "1 pending, EUR 12.34"}
    tick(f"{day}T{cutoff}:00Z")
    assert episodes("CUTOFF_MISSED") == {subject: "1 pending, EUR 12.34"}
