"""Benchmark of the summary actions and the bulk transaction feed (issue 5).

On PostgreSQL with 2,000,000 transactions over the five default interfaces:

1. one summary action (A_ProcessHostedServiceSummary over the two hosted
   interfaces, A_ProcessInvokedServiceSummary over the three invoked ones)
   against the plain SQL GROUP BY that computes the same figures, for a
   heartbeat-sized interval, an hour and a weekend gap; target: within 1.5x;
2. transactions per second through POST /api/v1/transactions/ (10,000 per
   request, the whole Django/DRF stack in-process, no socket); target: 10,000/s.

Use a database of its own (it creates its tables and 2M rows, once):

    createdb -h 127.0.0.1 -U postgres wt5_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt5_bench .venv/bin/python bench/summary.py

Options: --rows N (default 2,000,000), --fresh (regenerate the rows), --repeat N
(timed runs per figure; the median is printed), --requests N (bulk requests).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")  # a development secret key and localhost hosts; nothing else changes

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
logging.getLogger("monitoring").setLevel(logging.WARNING)  # one line per action would drown the table

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from monitoring.summaries.models import Direction, MonitoredInterface, Transaction  # noqa: E402
from monitoring.summaries.tasks import hosted_summary_action, invoked_summary_action  # noqa: E402
from monitoring.summaries.totals import transaction_totals_rebuild  # noqa: E402
from portal import clock, roles  # noqa: E402
from portal.lib.taskrun import TaskRun  # noqa: E402

END = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # a Monday noon
SPAN_DAYS = 30
INTERVALS = {
    "5 minutes": dt.timedelta(minutes=5),
    "1 hour": dt.timedelta(hours=1),
    "weekend gap (64 h)": dt.timedelta(hours=64),
}
TABLE = Transaction._meta.db_table

PLAIN_SQL = f"""
SELECT interface_id, currency,
       count(*) FILTER (WHERE completed_at IS NULL OR completed_at >= %(end)s),
       sum(amount) FILTER (WHERE completed_at IS NULL OR completed_at >= %(end)s),
       count(*) FILTER (WHERE status = 'COMPLETED' AND completed_at >= %(start)s AND completed_at < %(end)s),
       sum(amount) FILTER (WHERE status = 'COMPLETED' AND completed_at >= %(start)s AND completed_at < %(end)s),
       count(*) FILTER (WHERE status = 'FAILED' AND completed_at >= %(start)s AND completed_at < %(end)s)
FROM {TABLE}
WHERE interface_id = ANY(%(ids)s) AND received_at < %(end)s {{extra}}
GROUP BY interface_id, currency
"""
# The same predicate as the action: only rows still open or finished since the start can count.
SAME_PREDICATE = "AND (completed_at IS NULL OR completed_at >= %(start)s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--size", choices=("small", "full"), default="full", help="small: the CI smoke run")
    options = parser.parse_args()
    if options.size == "small":
        options.rows, options.repeat, options.requests = 20_000, 1, 1
    postgres_ready("bench/summary.py")
    rows_ready(options.rows, options.fresh)
    summary_benchmark(options.repeat)
    bulk_benchmark(options.requests)


def postgres_ready(script: str) -> None:
    """A migrated PostgreSQL database, or the script stops saying what it needs; its version printed."""
    if connection.vendor != "postgresql":
        sys.exit(f"{script} measures PostgreSQL: set DATABASE_URL=postgres://... (a database of its own)")
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(f"# {cursor.fetchone()[0].split(' on ')[0]}, {os.cpu_count()} CPUs, database {connection.settings_dict['NAME']}")


def rows_ready(count: int, fresh: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE reference LIKE %s", ["B-%"])
        present = cursor.fetchone()[0]
    if present == count and not fresh:
        print(f"# {present:,} transactions already there (--fresh to regenerate)")
        transaction_totals_rebuild()  # rows written around the feed: /metrics reads these totals
        return
    print(f"# generating {count:,} transactions over {SPAN_DAYS} days ...", flush=True)
    started = time.perf_counter()
    ids = list(MonitoredInterface.objects.order_by("code").values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}, monitoring_servicesummary, portal_outboundmessage")
        cursor.execute("SELECT setseed(0.42)")
        # Per row: an interface (round robin), a currency (EUR 50 %, USD 25 %, GBP 10 %,
        # JPY 10 %, BHD 5 %), received over the 30 days, finished 1 to 120 minutes later
        # (COMPLETED 95 %, FAILED 4.5 %; those finishing after END are pending at END),
        # or stuck PENDING (0.5 %, 10,000 of 2M).
        cursor.execute(
            f"""
            INSERT INTO {TABLE} (interface_id, reference, amount, currency, status, received_at, completed_at,
                                 created_at, updated_at)
            SELECT (%(ids)s::bigint[])[1 + g %% 5], 'B-' || g,
                   CASE WHEN c < 0.85 THEN round((random() * 5000)::numeric, 2)
                        WHEN c < 0.95 THEN round((random() * 500000)::numeric, 0)
                        ELSE round((random() * 2000)::numeric, 3) END,
                   CASE WHEN c < 0.50 THEN 'EUR' WHEN c < 0.75 THEN 'USD' WHEN c < 0.85 THEN 'GBP'
                        WHEN c < 0.95 THEN 'JPY' ELSE 'BHD' END,
                   CASE WHEN s < 0.95 THEN 'COMPLETED' WHEN s < 0.995 THEN 'FAILED' ELSE 'PENDING' END,
                   r,
                   CASE WHEN s < 0.995 THEN r + (1 + random() * 119) * interval '1 minute' END,
                   %(end)s, %(end)s
            FROM (SELECT g, random() AS c, random() AS s,
                         %(end)s::timestamptz - random() * interval '{SPAN_DAYS} days' AS r
                  FROM generate_series(1, %(count)s) AS g) AS generated
            """,
            {"ids": ids, "count": count, "end": END},
        )
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
    transaction_totals_rebuild()  # rows written around the feed: /metrics reads these totals
    print(f"# generated in {time.perf_counter() - started:.1f} s")


def summary_benchmark(repeat: int) -> None:
    interfaces = {
        direction: list(MonitoredInterface.objects.filter(direction=direction).order_by("code"))
        for direction in (Direction.HOSTED, Direction.INVOKED)
    }
    actions = {Direction.HOSTED: hosted_summary_action, Direction.INVOKED: invoked_summary_action}
    print()
    print(f"## one summary action vs the plain SQL GROUP BY (median of {repeat} runs, ms)")
    print(f"{'interval':<20} {'action':<8} {'rows':>9} {'action':>9} {'SQL same':>9} {'ratio':>6} {'SQL naive':>10} {'ratio':>6}")
    for label, length in INTERVALS.items():
        start = END - length
        for direction, members in interfaces.items():
            ids = [i.id for i in members]
            run = TaskRun(0, f"bench-{direction.lower()}", f"{direction}_SERVICE_MONITOR", tuple(i.code for i in members), start, END)
            action_ms = median_ms(lambda run=run, direction=direction: run_and_roll_back(actions[direction], run), repeat)
            same_ms, rows = plain_sql_ms(ids, start, SAME_PREDICATE, repeat)
            naive_ms, _ = plain_sql_ms(ids, start, "", repeat)
            print(
                f"{label:<20} {direction.lower():<8} {rows:>9,} {action_ms:>9.1f} {same_ms:>9.1f} "
                f"{action_ms / same_ms:>6.2f} {naive_ms:>10.1f} {action_ms / naive_ms:>6.2f}"
            )
    print("rows: transactions that can count (open at the end or finished inside); 'SQL same': the plain query with")
    print("the action's predicate; 'SQL naive': grouping every row received before the end.")


def run_and_roll_back(action, run: TaskRun) -> None:
    """The action as the scheduler runs it, in a transaction; rolled back so every run does the full work."""
    with clock.frozen(run.interval_end):
        try:
            with transaction.atomic():
                action(run)
                raise _RollBack
        except _RollBack:
            pass


class _RollBack(Exception):
    pass


def plain_sql_ms(ids: list[int], start: dt.datetime, extra: str, repeat: int) -> tuple[float, int]:
    sql = PLAIN_SQL.format(extra=extra)
    params = {"ids": ids, "start": start, "end": END}

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {TABLE} WHERE interface_id = ANY(%(ids)s) AND received_at < %(end)s {SAME_PREDICATE}", params
        )
        rows = cursor.fetchone()[0]
    return median_ms(query, repeat), rows


def median_ms(work, repeat: int) -> float:
    work()  # warm the cache and the plan
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def bulk_benchmark(requests: int) -> None:
    feeder, _ = User.objects.get_or_create(username="bench-feeder")
    feeder.groups.add(Group.objects.get(name=roles.FEEDER))
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(feeder).access_token}")
    codes = list(MonitoredInterface.objects.order_by("code").values_list("code", flat=True))
    run_id = uuid.uuid4().hex[:8]
    # Received long before the summarised month, so the figures above stay the same on every run.
    received = "2020-01-06T09:00:00Z"

    def batch(number: int, status: str = "PENDING") -> str:
        return json.dumps([
            {
                "interface": codes[i % len(codes)],
                "reference": f"LOAD-{run_id}-{number}-{i:05d}",
                "amount": f"{(i * 37) % 100000 / 100:.2f}",
                "currency": "EUR",
                "status": status,
                "received_at": received,
                "completed_at": "2020-01-06T09:30:00Z" if status != "PENDING" else None,
            }
            for i in range(10_000)
        ])

    def post(body: str, expected: str) -> float:
        started = time.perf_counter()
        answer = client.post("/api/v1/transactions/", body, content_type="application/json")
        elapsed = time.perf_counter() - started
        results = {item["result"] for item in answer.json()}
        if answer.status_code not in (200, 201) or results != {expected}:
            sys.exit(f"unexpected answer {answer.status_code}: {str(answer.content[:300])}")
        return elapsed

    bodies = [batch(n) for n in range(requests)]
    print()
    print(f"## bulk feed through POST /api/v1/transactions/ ({requests} requests of 10,000, in-process)")
    created = [post(body, "created") for body in bodies]
    replayed = [post(body, "unchanged") for body in bodies[:3]]
    updated = [post(batch(n, "COMPLETED"), "updated") for n in range(min(3, requests))]
    for label, timings in (("created", created), ("replayed (unchanged)", replayed), ("moved on (updated)", updated)):
        per_second = 10_000 * len(timings) / sum(timings)
        print(f"{label:<22} {per_second:>9,.0f} transactions/s   (median request {statistics.median(timings) * 1000:.0f} ms)")
    Transaction.objects.filter(reference__startswith=f"LOAD-{run_id}-").delete()


if __name__ == "__main__":
    main()
