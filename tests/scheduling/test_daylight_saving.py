"""A 1-hour task on a Europe/Berlin calendar fires once per real hour across both DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from portal import clock
from scheduling.scheduler.heartbeat import heartbeat_tick
from tests.scheduling.conftest import utc

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def tick_every_five_minutes(start: str, end: str) -> None:
    at, stop = utc(start), utc(end)
    while at <= stop:
        clock.set_now(at)
        heartbeat_tick()
        at += dt.timedelta(minutes=5)


def fired_at(recorder) -> list[dt.datetime]:
    return [run.interval_end for run in recorder.calls]


def local(instants) -> list[str]:
    return [f"{i.astimezone(BERLIN):%H:%M %Z}" for i in instants]


@pytest.mark.parametrize(
    ("created", "until", "wall_clock"),
    [
        # Spring: 02:00 CET becomes 03:00 CEST; the wall clock shows no 02:00.
        ("2026-03-28T21:30:00Z", "2026-03-29T03:30:00Z",
         ["23:30 CET", "00:30 CET", "01:30 CET", "03:30 CEST", "04:30 CEST", "05:30 CEST"]),
        # Autumn: 03:00 CEST becomes 02:00 CET; the wall clock shows 02:30 twice.
        ("2026-10-24T20:30:00Z", "2026-10-25T03:30:00Z",
         ["23:30 CEST", "00:30 CEST", "01:30 CEST", "02:30 CEST", "02:30 CET", "03:30 CET", "04:30 CET"]),
    ],
)
def test_an_hourly_task_fires_once_per_real_hour_across_the_change(recorder, make_group, make_task, now, created, until, wall_clock):
    group = make_group(weekend_days=())  # the changes fall on Sundays
    now(created)
    make_task(interval_seconds=3600, calendar_groups=[group])
    tick_every_five_minutes(created, until)
    fired = fired_at(recorder)
    assert local(fired) == wall_clock
    assert {b - a for a, b in zip([utc(created), *fired], fired, strict=False)} == {dt.timedelta(hours=1)}
    assert [run.interval_start for run in recorder.calls[1:]] == fired[:-1]  # no gap, no overlap


def test_opening_hours_across_the_spring_change_open_for_their_real_duration(recorder, make_group, make_task, now):
    # Open 01:00-04:00 on the wall clock: on 2026-03-29 that is two real hours, 01:00 CET to 04:00 CEST.
    group = make_group(weekend_days=(), hours=[("01:00", "04:00")])
    now("2026-03-28T12:00:00Z")
    make_task(interval_seconds=3600, calendar_groups=[group])
    tick_every_five_minutes("2026-03-28T23:50:00Z", "2026-03-29T03:10:00Z")
    assert local(fired_at(recorder)) == ["01:00 CET", "03:00 CEST"]


def test_opening_hours_across_the_autumn_change_open_for_their_real_duration(recorder, make_group, make_task, now):
    # Open 01:00-04:00 on the wall clock: on 2026-10-25 that is four real hours.
    group = make_group(weekend_days=(), hours=[("01:00", "04:00")])
    now("2026-10-24T12:00:00Z")
    make_task(interval_seconds=3600, calendar_groups=[group])
    tick_every_five_minutes("2026-10-24T22:50:00Z", "2026-10-25T03:10:00Z")
    assert local(fired_at(recorder)) == ["01:00 CEST", "02:00 CEST", "02:00 CET", "03:00 CET"]
