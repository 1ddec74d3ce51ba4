"""Fixtures of the scheduler's tests: a recording action, tasks and calendar groups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from portal import clock
from scheduling.models import CalendarGroup, SchedulerTask, Subtype
from scheduling.services import calendar_group_create, heartbeat_tick, scheduler_task_create
from tests.scheduling.actions import RECORDER, Recorder

RECORD = "tests.scheduling.actions.record"


@pytest.fixture
def recorder(settings) -> Recorder:
    """The recording action registered for every subtype."""
    settings.SCHEDULER_ACTIONS = {subtype: RECORD for subtype in Subtype.values}
    settings.SCHEDULER_RETRY_BASE_SECONDS = 60
    settings.SCHEDULER_RETRY_MAX_SECONDS = 3600
    RECORDER.reset()
    yield RECORDER
    RECORDER.reset()


@pytest.fixture
def make_task(db) -> Callable[..., SchedulerTask]:
    def make(name: str = "summary", *, interval_seconds: int = 300, subtype: str = Subtype.BATCH_MONITOR, **options) -> SchedulerTask:
        return scheduler_task_create(actor="test", name=name, subtype=subtype, interval_seconds=interval_seconds, **options)

    return make


@pytest.fixture
def make_group(db) -> Callable[..., CalendarGroup]:
    def make(name: str = "TARGET2", *, timezone: str = "Europe/Berlin", weekend_days=(6, 7), holidays=(), hours=()) -> CalendarGroup:
        return calendar_group_create(
            actor="test",
            name=name,
            timezone=timezone,
            weekend_days=list(weekend_days),
            entries=[{"date": dt.date.fromisoformat(d), "description": "holiday"} for d in holidays],
            schedule_entries=[
                {"type_code": "DAY", "open_time": dt.time.fromisoformat(o), "close_time": dt.time.fromisoformat(c)} for o, c in hours
            ],
        )

    return make


@pytest.fixture
def tick(now) -> Callable[[str], object]:
    """One in-process E_Heartbeat at the given instant."""

    def run(at: str | None = None, **options):
        if at is not None:
            now(at)
        return heartbeat_tick(**options)

    return run


def utc(text: str) -> dt.datetime:
    return clock.parse_instant(text)
