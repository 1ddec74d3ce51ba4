"""Benchmark: how long a heartbeat tick takes with many scheduler tasks, and business-time look-ups.

Run on PostgreSQL in a database of its own (it deletes every scheduler task there):

    createdb -h 127.0.0.1 -U postgres wt3_bench
    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt3_bench .venv/bin/python bench/heartbeat_tick.py [--tasks N]

Prints figures and ratios: an idle tick; a tick that runs every task in-process (each action
writes one row, as a summary writes its outbox rows), first by the one-task path (a claim commit
and an action commit per task: the baseline) then by the bulk path a tick takes when many tasks
are due (one claim transaction, a transaction per chunk of actions; target >= 1,000 scheduler
actions a second); the same tasks split between two concurrent tickers; a tick that defers every
task to the next business day; and next-open look-ups on a calendar with weekends, holidays and
opening hours. ``--size small`` runs 50 tasks (the CI smoke run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from portal import clock  # noqa: E402
from portal.lib.taskrun import TaskRun  # noqa: E402
from portal.models import AuditEntry, Heartbeat  # noqa: E402
from scheduling.scheduler.calendars import calendar_group_create, holidays_import  # noqa: E402
from scheduling.scheduler.heartbeat import heartbeat_tick  # noqa: E402
from scheduling.scheduler.models import CalendarGroup, SchedulerTask, Subtype, TaskState  # noqa: E402

START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)  # a Monday, 09:00 in Berlin
RUNS: list[int] = []
RUNS_LOCK = threading.Lock()


def bench_action(run: TaskRun) -> None:
    AuditEntry.objects.create(action="bench.action", object_type="scheduling.SchedulerTask", object_id=str(run.task_id))
    with RUNS_LOCK:
        RUNS.append(run.task_id)


def reset(count: int, group: CalendarGroup | None) -> None:
    SchedulerTask.objects.all().delete()
    AuditEntry.objects.filter(action="bench.action").delete()
    Heartbeat.objects.all().delete()
    RUNS.clear()
    SchedulerTask.objects.bulk_create(
        SchedulerTask(
            name=f"bench-{n:05d}", subtype=Subtype.BATCH_MONITOR, interval_seconds=300, enabled=True,
            state=TaskState.ACTIVE, last_interval_end_at=START, next_timeout_at=START + dt.timedelta(minutes=5),
        )
        for n in range(count)
    )
    if group is not None:
        through = SchedulerTask.calendar_groups.through
        through.objects.bulk_create(through(schedulertask_id=i, calendargroup_id=group.id) for i in SchedulerTask.objects.values_list("id", flat=True))


def timed(function) -> float:
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def counted(function) -> tuple[float, int]:
    """Seconds and SQL statements of one call."""
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        seconds = timed(function)
    return seconds, statements


def tick_at(instant: dt.datetime, *, bulk: bool = True) -> None:
    settings.SCHEDULER_TICK_BULK_MIN = 1 if bulk else 10**9
    clock.set_now(instant)
    heartbeat_tick()


def concurrent_ticks(instant: dt.datetime) -> None:
    clock.set_now(instant)

    def one() -> None:
        try:
            heartbeat_tick()
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(count: int, repeat: int) -> None:
    call_command("migrate", verbosity=0)
    settings.SCHEDULER_ACTIONS = {subtype: "__main__.bench_action" for subtype in Subtype.values}
    print(f"database: {connection.vendor}, tasks: {count}")

    CalendarGroup.objects.filter(name="BENCH").delete()
    group = calendar_group_create(
        actor="bench", name="BENCH", timezone="Europe/Berlin", weekend_days=[6, 7],
        schedule_entries=[{"type_code": "DAY", "open_time": dt.time(7), "close_time": dt.time(18)}],
    )
    for year in (2026, 2027):
        holidays_import(actor="bench", group=group, code="TAR", year=year)

    reset(count, None)
    idle = timed(lambda: tick_at(START + dt.timedelta(minutes=1)))
    runs = {False: [], True: []}
    for _ in range(repeat):  # alternated, so that both paths see the same load on a shared machine
        for bulk in (False, True):
            reset(count, None)
            runs[bulk].append(counted(lambda bulk=bulk: tick_at(START + dt.timedelta(minutes=5), bulk=bulk)))
            assert len(RUNS) == count and SchedulerTask.objects.filter(last_fired_at=START + dt.timedelta(minutes=5)).count() == count
    (one_by_one, one_statements), (due, due_statements) = (min(runs[bulk]) for bulk in (False, True))
    print(f"idle tick (no task due):            {idle * 1000:8.1f} ms")
    print(f"tick running {count} actions, one task at a time (baseline): {one_by_one:8.2f} s  = "
          f"{one_by_one / count * 1000:.2f} ms per task, {count / one_by_one:.0f} actions/s, "
          f"{one_statements / count:.1f} SQL statements per action (commits aside)")
    print(f"tick running {count} actions in bulk: {due:8.2f} s  = {due / count * 1000:.2f} ms per task, "
          f"{count / due:.0f} actions/s (target >= 1000), {due_statements / count:.2f} statements per action "
          f"(the action's own: 1)")

    reset(count, None)
    both = timed(lambda: concurrent_ticks(START + dt.timedelta(minutes=5)))
    assert sorted(RUNS) == sorted(set(RUNS)) and len(RUNS) == count, "an action ran twice"
    print(f"two concurrent ticks, same {count}:     {both:8.2f} s  (each action once: {len(RUNS)} runs)")

    reset(count, group)
    friday_evening = dt.datetime(2026, 3, 6, 17, 30, tzinfo=dt.UTC)  # 18:30 in Berlin: closed until Monday
    SchedulerTask.objects.update(next_timeout_at=friday_evening)
    deferred = timed(lambda: tick_at(friday_evening))
    assert not RUNS and not SchedulerTask.objects.filter(next_timeout_at=friday_evening).exists()
    print(f"tick deferring {count} tasks to Monday:  {deferred:8.2f} s  = {deferred / count * 1000:.2f} ms per task")

    calendar = CalendarGroup.objects.get(id=group.id).calendar()
    instants = [friday_evening + dt.timedelta(minutes=17 * n) for n in range(2000)]
    lookup = timed(lambda: [calendar.next_open(i) for i in instants])
    print(f"next_open look-up:                  {lookup / len(instants) * 1e6:8.1f} µs")
    closed = type(calendar)(calendar.zone, frozenset(range(1, 7)), calendar.closed_dates, calendar.periods)
    sundays_closed = type(calendar)(closed.zone, closed.weekend_days, frozenset(
        dt.date(2026, 3, 8) + dt.timedelta(days=7 * n) for n in range(110)), closed.periods)
    worst = timed(lambda: sundays_closed.next_open(friday_evening))
    print(f"next_open, never open (2-year scan): {worst * 1000:8.1f} ms")

    print(f"ratio bulk / one-at-a-time actions/s: {one_by_one / due:8.1f} x (best of {repeat} runs each)")
    print(f"ratio in-process tick / idle tick:  {due / idle:8.0f} x")
    print(f"ratio two tickers / one ticker:     {both / due:8.2f} x")
    print(f"ratio defer / run per task:         {deferred / due:8.2f} x")
    reset(0, None)
    group.delete()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="timed ticks of each path; the best is printed")
    parser.add_argument("--size", choices=("small", "full"), default="full", help="small: 50 tasks once (the CI smoke run)")
    options = parser.parse_args()
    small = options.size == "small"
    main(50 if small else options.tasks, 1 if small else options.repeat)
