"""Benchmark of the monitor's reads with 1,000,000 jobs (issue 7).

Times, over 200 requests each (median and 95th percentile), through the whole
Django/DRF stack in-process (no socket):

1. the jobs API filtered by status (`GET /api/v1/jobs/?status=Error`, keyset page);
2. the monitor's refresh request (`GET /monitor/data/`), unfiltered and by status;
target: 95th percentile under 50 ms (keyset pages, no COUNT over the whole table);
3. open tabs: database queries a second for 1 tab and for 50 tabs refreshing every second
   (the console's cadence), the tabs of one browser and 50 browsers, with the console's
   snapshot and without it (the baseline); target: 50 tabs cost no more queries a second than one.

Use a database of its own (it creates its tables and the jobs, once):

    createdb -h 127.0.0.1 -U postgres portal_bench_monitor
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_monitor .venv/bin/python bench/monitor.py

Options: --jobs N (default 1,000,000), --requests N (default 200), --tabs N (50), --seconds N (5);
--size small is the CI smoke run (2,000 jobs, 20 requests, 2 seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")  # a development secret key and localhost hosts; nothing else changes

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from portal import roles  # noqa: E402
from scheduling.workflows.models import Job, Spool  # noqa: E402
from scheduling.workflows.services import workflow_load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Mostly finished work, as on a real monitor: a few of each live status.
STATUS_MIX = "CASE WHEN n %% 1000 = 0 THEN 'Error' WHEN n %% 997 = 0 THEN 'Waiting' WHEN n %% 991 = 0 THEN 'Pause' " \
             "WHEN n %% 983 = 0 THEN 'Running' ELSE 'OK' END"


def build(jobs: int) -> None:
    if connection.vendor != "postgresql":
        sys.exit("run it on PostgreSQL: DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    if Job.objects.count() >= jobs:
        return
    Job.objects.all().delete()
    spools = [workflow_load(spool_name=f"bench{i}", path=str(ROOT / "workflows/demo.ini"), actor="bench").spool for i in range(10)]
    ids = [s.id for s in spools]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO scheduling_job (spool_id, generation, state, attempt, type, status, timestamp, comment,
                stop_flag, ignore_time_window, origin, created_at, updated_at, output_tail, worker)
            SELECT (ARRAY{ids})[1 + n %% 10], n / 10 + 1, 10 + n %% 5, 1, 'Prepare', {STATUS_MIX},
                   now() - (n || ' seconds')::interval, '', false, false, 'add', now(), now(), '', ''
            FROM generate_series(1, %s) AS n
            """,
            [jobs],
        )
        cursor.execute("ANALYZE scheduling_job")
    print(f"built {jobs:,} jobs over {len(spools)} spools in {time.perf_counter() - started:.1f} s")


def reader() -> Client:
    user, _ = User.objects.get_or_create(username="bench-viewer")
    user.groups.add(Group.objects.get(name=roles.VIEWER))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def timed(client: Client, url: str, requests: int) -> tuple[float, float]:
    client.get(url)  # warm the caches once
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def queries_a_second(tabs: list[Client], seconds: int) -> float:
    """Every tab refreshes once a second, as the console does, for ``seconds``: database queries a second."""
    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    cache.clear()
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        for second in range(seconds):
            for tab in tabs:
                assert tab.get("/monitor/data/").status_code == 200
            threading.Event().wait(max(0.0, started + second + 1 - time.perf_counter()))
    return queries / (time.perf_counter() - started)


def open_tabs(count: int, seconds: int) -> None:
    browser = reader()
    same_browser = [browser] + [Client(HTTP_HOST="localhost") for _ in range(count - 1)]
    for tab in same_browser[1:]:
        tab.cookies = browser.cookies
    browsers = [reader() for _ in range(count)]
    print(f"{'open tabs, refreshing every second':<48} {'queries/s':>10} {'no snapshot':>12}")
    figures, baselines = {}, {}
    for label, tabs in [("1 tab", [browser]), (f"{count} tabs of one browser", same_browser), (f"{count} browsers", browsers)]:
        settings.CONSOLE_SNAPSHOT_SECONDS = 0
        baselines[label] = queries_a_second(tabs, seconds)
        settings.CONSOLE_SNAPSHOT_SECONDS = 1
        figures[label] = queries_a_second(tabs, seconds)
        print(f"{label:<48} {figures[label]:>10.1f} {baselines[label]:>12.1f}")
    one = baselines["1 tab"]  # what one tab cost before the snapshot
    print(f"ratio {count} tabs of one browser / 1 tab without snapshot: "
          f"{figures[f'{count} tabs of one browser'] / one:.2f} (target <= 1); "
          f"{count} browsers (a reader check each per second) / 1 tab: {figures[f'{count} browsers'] / one:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--tabs", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--size", choices=("small", "full"), default="full")
    options = parser.parse_args()
    if options.size == "small":
        options.jobs, options.requests, options.seconds = 2000, 20, 2
    build(options.jobs)
    settings.CONSOLE_SNAPSHOT_SECONDS = 0  # the timings below are of building the refresh, not of the snapshot
    client = reader()
    spool = Spool.objects.order_by("name").first().name
    print(f"{Job.objects.count():,} jobs; {options.requests} requests each; target p95 < 50 ms")
    print(f"{'request':<48} {'median ms':>10} {'p95 ms':>8} {'p95/target':>11}")
    for label, url in [
        ("jobs API, status=Error", "/api/v1/jobs/?status=Error"),
        ("jobs API, status=OK", "/api/v1/jobs/?status=OK"),
        ("jobs API, spool and status=Waiting", f"/api/v1/jobs/?spool={spool}&status=Waiting"),
        ("monitor refresh, unfiltered", "/monitor/data/"),
        ("monitor refresh, status=Error", "/monitor/data/?status=Error"),
        ("monitor refresh, spool and status=Pause", f"/monitor/data/?spool={spool}&status=Pause"),
    ]:
        median, p95 = timed(client, url, options.requests)
        print(f"{label:<48} {median:>10.1f} {p95:>8.1f} {p95 / 50:>10.2f}x")
    open_tabs(options.tabs, options.seconds)


if __name__ == "__main__":
    main()
