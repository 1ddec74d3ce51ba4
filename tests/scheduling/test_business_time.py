"""Business time of a calendar group (DOMAIN §2): weekends, holidays, opening hours, time zones, DST."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduling.scheduler.business_time import Calendar, calendars_next_open, wall_instant
from tests.scheduling.conftest import utc


def calendar(timezone="Europe/Berlin", weekend=(6, 7), closed=(), hours=()) -> Calendar:
    return Calendar.build(
        timezone=timezone,
        weekend_days=weekend,
        closed_dates=[dt.date.fromisoformat(d) for d in closed],
        periods=[(dt.time.fromisoformat(o), dt.time.fromisoformat(c)) for o, c in hours],
    )


def test_a_business_day_without_opening_hours_is_open_all_day_in_the_groups_time_zone():
    berlin = calendar()
    # Monday 2026-03-02 starts at 23:00 UTC on Sunday in Berlin.
    assert not berlin.is_open(utc("2026-03-01T22:59:59Z"))
    assert berlin.is_open(utc("2026-03-01T23:00:00Z"))
    assert berlin.is_open(utc("2026-03-06T22:59:59Z"))  # Friday 23:59:59 in Berlin
    assert not berlin.is_open(utc("2026-03-06T23:00:00Z"))  # Saturday


def test_opening_hours_are_half_open_on_the_wall_clock():
    berlin = calendar(hours=[("08:00", "12:00"), ("13:00", "17:30")])
    assert not berlin.is_open(utc("2026-03-02T06:59:59Z"))
    assert berlin.is_open(utc("2026-03-02T07:00:00Z"))  # 08:00 CET
    assert not berlin.is_open(utc("2026-03-02T11:00:00Z"))  # 12:00: closed at close
    assert berlin.is_open(utc("2026-03-02T12:00:00Z"))
    assert not berlin.is_open(utc("2026-03-02T16:30:00Z"))


def test_a_holiday_and_a_weekend_are_skipped_to_the_next_opening():
    # Friday 2026-04-03 Good Friday, Monday 2026-04-06 Easter Monday.
    target = calendar(closed=["2026-04-03", "2026-04-06"], hours=[("07:00", "18:00")])
    thursday_evening = utc("2026-04-02T16:00:00Z")  # 18:00 CEST, closing time
    assert not target.is_open(thursday_evening)
    assert target.next_open(thursday_evening) == utc("2026-04-07T05:00:00Z")  # Tuesday 07:00 CEST


def test_next_open_of_an_open_instant_is_the_instant_itself():
    target = calendar(hours=[("07:00", "18:00")])
    assert target.next_open(utc("2026-03-02T10:00:00Z")) == utc("2026-03-02T10:00:00Z")


def test_an_opening_time_skipped_by_the_spring_change_opens_at_the_change():
    # 2026-03-29 (a Sunday, made a business day here): Berlin jumps from 02:00 CET to 03:00 CEST.
    sunday = calendar(weekend=(), hours=[("02:30", "05:00")])
    assert wall_instant(dt.date(2026, 3, 29), dt.time(2, 30), sunday.zone) == utc("2026-03-29T01:00:00Z")
    assert sunday.next_open(utc("2026-03-29T00:00:00Z")) == utc("2026-03-29T01:00:00Z")
    assert sunday.is_open(utc("2026-03-29T01:00:00Z"))


def test_the_repeated_autumn_hour_is_open_twice():
    # 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:00-03:00 happens twice.
    sunday = calendar(weekend=(), hours=[("02:00", "02:30")])
    first = utc("2026-10-25T00:00:00Z")  # 02:00 CEST
    second = utc("2026-10-25T01:00:00Z")  # 02:00 CET
    assert sunday.is_open(first) and sunday.is_open(second)
    assert sunday.next_open(utc("2026-10-25T00:45:00Z")) == second


def test_a_period_entered_by_the_clock_going_back_opens_at_the_change():
    sunday = calendar(weekend=(), hours=[("01:30", "02:15")])
    after_first_pass = utc("2026-10-25T00:20:00Z")  # 02:20 CEST, past the close
    assert not sunday.is_open(after_first_pass)
    assert sunday.next_open(after_first_pass) == utc("2026-10-25T01:00:00Z")  # back to 02:00 CET


def test_several_calendars_are_open_when_any_is_and_none_is_always_open():
    berlin = calendar(hours=[("09:00", "10:00")])
    new_york = calendar(timezone="America/New_York", hours=[("09:00", "10:00")])
    instant = utc("2026-03-02T09:30:00Z")  # 10:30 Berlin, 04:30 New York
    assert calendars_next_open([berlin, new_york], instant) == utc("2026-03-02T14:00:00Z")
    assert calendars_next_open([], instant) == instant


def test_a_calendar_that_never_opens_has_no_next_open():
    closed = calendar(weekend=(1, 2, 3, 4, 5, 6), hours=[("09:00", "10:00")])
    sundays = [dt.date(2026, 3, 1) + dt.timedelta(days=7 * n) for n in range(120)]
    never = Calendar(closed.zone, closed.weekend_days, frozenset(sundays), closed.periods)
    assert never.next_open(utc("2026-03-01T12:00:00Z"), horizon_days=800) is None


@pytest.mark.django_db
def test_a_soft_deleted_holiday_is_a_business_day_again(make_group):
    group = make_group(holidays=["2026-05-01"])
    may_day = utc("2026-05-01T10:00:00Z")
    assert not group.is_open(may_day)
    entry = group.entries.get()
    entry.deleted = True
    entry.save()
    assert group.is_open(may_day)
