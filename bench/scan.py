"""Benchmark of the batch scan against the plain SQL query that selects the same batches.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python bench/scan.py

Builds, on PostgreSQL, 1,000,000 windows over 100,000 configs of which 1% are open or
delayed at the scan's instant, then a tenfold larger windows table (100 windows per
config) with the same alerts, and prints for each: the plain query, the scan (detection,
message building, schema validation and outbox writes) and their ratio, then the ratio
of the two scans; and the first scan after a deployment (every config due) by the
per-config path and by the bulk path, checked to leave the same alert rows and messages.
The database must be one made for it (its name ends in ``_bench``): the batch tables and
the outbox are emptied first. Targets: the scan within 2x the query; the tenfold table at
most 1.5x the scan time; the first scan of 100,000 configs within 2 s (issue 16).
``--scale 1`` builds one table only; ``--size small`` is the CI smoke run (1,000 configs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
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

from monitoring.batches.models import ALERT_DUE_NOW, BatchConfig, BatchSource  # noqa: E402
from monitoring.batches.scan import batch_scan  # noqa: E402
from portal import clock  # noqa: E402
from portal.models import OutboundMessage  # noqa: E402
from portal.validation import schema_errors  # noqa: E402

T1 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)  # the timed scan
T0 = T1 - dt.timedelta(minutes=5)  # the previous heartbeat's scan
ALERT_EVERY = 200  # per 200 configs: one OPEN and one DELAYED, 1% in all
BULK_MIN = settings.BATCH_SCAN_BULK_MIN

# The plain query: each config's latest window, kept when DOMAIN §1 says it is OPEN or DELAYED.
PLAIN_QUERY = """
SELECT latest.config_id, latest.id
FROM (
    SELECT DISTINCT ON (w.config_id)
           w.id, w.config_id, w.status, w.window_end, w.received_count, w.expected_count, w.max_wait_hours
    FROM monitoring_batchwindow w
    ORDER BY w.config_id, w.window_start DESC
) latest
JOIN monitoring_batchconfig c ON c.id = latest.config_id
WHERE c.active AND (
    (latest.status = 'OPEN' AND latest.window_end <= %(now)s AND latest.received_count < latest.expected_count)
    OR (c.exception_check AND latest.window_end + latest.max_wait_hours * interval '1 hour' <= %(now)s)
)
"""

# The same with a lateral index probe per config: what a careful hand-written query does.
LATERAL_QUERY = """
SELECT c.id, latest.id
FROM monitoring_batchconfig c
CROSS JOIN LATERAL (
    SELECT w.id, w.status, w.window_end, w.received_count, w.expected_count, w.max_wait_hours
    FROM monitoring_batchwindow w WHERE w.config_id = c.id ORDER BY w.window_start DESC LIMIT 1
) latest
WHERE c.active AND (
    (latest.status = 'OPEN' AND latest.window_end <= %(now)s AND latest.received_count < latest.expected_count)
    OR (c.exception_check AND latest.window_end + latest.max_wait_hours * interval '1 hour' <= %(now)s)
)
"""

def insert_select(model, columns: dict[str, str], rest: str, params: dict) -> str:
    """``INSERT INTO <model's table> (...) SELECT ... <rest>``: the given column expressions, and every other
    column at its field's default, so that a column added to the model later does not break the benchmark."""
    names, values = [], []
    for f in model._meta.concrete_fields:
        if f.column in columns:
            names.append(f.column)
            values.append(columns[f.column])
        elif not f.primary_key:
            params[f"default_{f.column}"] = f.get_db_prep_save(f.get_default(), connection)
            names.append(f.column)
            values.append(f"%(default_{f.column})s")
    unknown = set(columns) - set(names)
    assert not unknown, f"{model._meta.db_table} has no column {sorted(unknown)}"
    return f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) SELECT {', '.join(values)} {rest}"


BATCH_TABLES = (
    "monitoring_batchalert, monitoring_batchfile, monitoring_batchsource, monitoring_batchwindow, "
    "monitoring_batchconfig, portal_outboundmessage"
)


def build(configs: int, per_config: int) -> None:
    """Configs with ``per_config`` consecutive daily windows each; the latest decides the state:
    per ALERT_EVERY configs one OPEN (ended 3 minutes before T1, a source missing) and one
    DELAYED (complete, SLA passed 3 minutes before T1); half the others are open and in
    progress, half complete with their SLA ahead."""
    params = {"n": configs, "k": per_config, "t1": T1, "every": ALERT_EVERY, "due": ALERT_DUE_NOW}
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {BATCH_TABLES} RESTART IDENTITY CASCADE")
        configs = {
            "id": "g", "tenant": "'t' || (g %% 1000)", "name": "'CFG_' || g", "window_hours": "24", "max_wait_hours": "2",
            "target_app": "'ledger'", "target_workflow": "'post'", "active": "true", "exception_check": "true",
            "realert_minutes": "60", "created_at": "%(t1)s", "updated_at": "%(t1)s",
        }
        cursor.execute(insert_select(BatchConfig, configs, "FROM generate_series(1, %(n)s) g", params), params)
        sources = {"config_id": "g", "tenant": "'t' || (g %% 1000)", "name": "'src_' || g || '_' || s", "position": "p - 1"}
        rest = "FROM generate_series(1, %(n)s) g, unnest(ARRAY['a', 'b']) WITH ORDINALITY AS u(s, p)"
        cursor.execute(insert_select(BatchSource, sources, rest, params), params)
        cursor.execute(
            """
            CREATE TEMP TABLE bench_latest AS
            SELECT g AS config_id,
                   CASE WHEN g %% %(every)s = 0 THEN 'O' WHEN g %% %(every)s = 1 THEN 'D'
                        WHEN g %% 2 = 0 THEN 'P' ELSE 'C' END AS kind
            FROM generate_series(1, %(n)s) g
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO monitoring_batchwindow (id, config_id, status, extract_timestamp, window_start, window_end,
                expected_count, received_count, max_wait_hours, trigger_status, opened_at, completed_at, failed_at,
                failed_by, fail_reason)
            SELECT (l.config_id - 1) * %(k)s + k + 1, l.config_id,
                   CASE WHEN k = %(k)s - 1 AND l.kind IN ('O', 'P') THEN 'OPEN' ELSE 'COMPLETED' END,
                   s.start, s.start, s.start + interval '24 hours', 2,
                   CASE WHEN k = %(k)s - 1 AND l.kind IN ('O', 'P') THEN 1 ELSE 2 END, 2,
                   CASE WHEN k = %(k)s - 1 AND l.kind IN ('O', 'P') THEN 'NONE' ELSE 'SENT' END,
                   s.start, CASE WHEN k = %(k)s - 1 AND l.kind IN ('O', 'P') THEN NULL ELSE s.start + interval '25 hours' END,
                   NULL, '', ''
            FROM bench_latest l
            CROSS JOIN generate_series(0, %(k)s - 1) k
            CROSS JOIN LATERAL (
                SELECT CASE l.kind
                    WHEN 'O' THEN %(t1)s - interval '24 hours 3 minutes'
                    WHEN 'D' THEN %(t1)s - interval '26 hours 3 minutes'
                    WHEN 'P' THEN %(t1)s - interval '12 hours'
                    ELSE %(t1)s - interval '25 hours' END
                    - (%(k)s - 1 - k) * interval '24 hours' AS start
            ) s
            """,
            params,
        )
        cursor.execute("UPDATE monitoring_batchconfig SET latest_window_id = (id - 1) * %(k)s + %(k)s", params)
        cursor.execute(
            """
            INSERT INTO monitoring_batchfile (config_id, source_id, source_name, window_id, extract_timestamp, received_at,
                payload, exception, held, counted, applied_at)
            SELECT w.config_id, s.id, s.name, w.id, w.window_start, w.window_start, '{}'::jsonb, '', false, true, NULL
            FROM monitoring_batchwindow w
            JOIN monitoring_batchconfig c ON c.latest_window_id = w.id
            JOIN monitoring_batchsource s ON s.config_id = w.config_id AND (w.received_count = 2 OR right(s.name, 2) = '_a')
            """
        )
        cursor.execute(
            """
            INSERT INTO monitoring_batchalert (config_id, state, window_id, sequence, transition, last_message_at,
                evaluated_at, due_at, claim_token)
            SELECT id, 'NONE', NULL, 0, 0, NULL, NULL, %(due)s, NULL FROM monitoring_batchconfig
            """,
            params,
        )
        for table in ("batchconfig", "batchsource", "batchwindow", "batchfile"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('monitoring_{table}', 'id'), (SELECT max(id) FROM monitoring_{table}))"
            )
        cursor.execute("DROP TABLE bench_latest")
        cursor.execute("VACUUM ANALYZE monitoring_batchwindow")
        cursor.execute("ANALYZE")


def timed(function, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def plain(sql: str, now: dt.datetime) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, {"now": now})
        return cursor.fetchall()


def snapshot_alerts(name: str = "bench_alert_snapshot") -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM monitoring_batchalert")


def restore_alerts(name: str = "bench_alert_snapshot") -> None:
    """Back to a snapshot (by default the state after the T0 scan), so that every repetition detects and sends the same."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE portal_outboundmessage CASCADE")  # and the summaries that point at messages
        cursor.execute(
            f"""
            UPDATE monitoring_batchalert a SET state = s.state, window_id = s.window_id, sequence = s.sequence,
                transition = s.transition, last_message_at = s.last_message_at, evaluated_at = s.evaluated_at,
                due_at = s.due_at, claim_token = s.claim_token
            FROM {name} s
            WHERE s.config_id = a.config_id AND a.evaluated_at IS DISTINCT FROM s.evaluated_at
            """
        )
        cursor.execute("ANALYZE monitoring_batchalert")


def outcome() -> tuple:
    """What a scan left: every alert row, and the messages (less their UUIDs) by dedupe key."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT md5(string_agg(concat_ws(':', config_id, state, window_id, sequence, transition, last_message_at, "
            "evaluated_at, due_at), ',' ORDER BY config_id)) FROM monitoring_batchalert"
        )
        alerts = cursor.fetchone()[0]
    messages = {key: {**payload, "uuid": ""} for key, payload in OutboundMessage.objects.values_list("dedupe_key", "payload")}
    return alerts, messages


def first_scan(*, bulk: bool) -> tuple[float, object, tuple]:
    """The first scan after a deployment, every config due, at T1 (1% alerting), by one path or the other."""
    restore_alerts("bench_alert_fresh")
    settings.BATCH_SCAN_BULK_MIN = 1 if bulk else 10**9
    clock.set_now(T1)
    try:
        seconds, report = timed(lambda: batch_scan(now=T1))
    finally:
        settings.BATCH_SCAN_BULK_MIN = BULK_MIN
    return seconds, report, outcome()


def scan_once() -> object:
    restore_alerts()
    started = time.perf_counter()
    report = batch_scan(now=T1)
    return time.perf_counter() - started, report


def measure(configs: int, per_config: int, repeat: int) -> dict:
    started = time.perf_counter()
    build(configs, per_config)
    built = time.perf_counter() - started
    snapshot_alerts("bench_alert_fresh")  # every config due, as after a deployment
    per_config_seconds, report1, per_config_outcome = first_scan(bulk=False)
    bulk_seconds, bulk_report, bulk_outcome = first_scan(bulk=True)
    assert bulk_outcome == per_config_outcome, "the bulk scan left other alert rows or messages than the per-config scan"
    assert bulk_report.messages == report1.messages, (bulk_report, report1)
    restore_alerts("bench_alert_fresh")
    clock.set_now(T0)
    report0 = batch_scan(now=T0)  # the previous heartbeat's scan
    assert sum(report0.messages.values()) == 0, report0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitoring_batchalert")  # as autovacuum does after rewriting every row
    snapshot_alerts()
    plain_seconds, rows = timed(lambda: plain(PLAIN_QUERY, T1), repeat=repeat)
    lateral_seconds, lateral_rows = timed(lambda: plain(LATERAL_QUERY, T1), repeat=repeat)
    clock.set_now(T1)
    runs = [scan_once() for _ in range(repeat)]
    scan_seconds, report = statistics.median(r[0] for r in runs), runs[-1][1]
    sent = {(p["btch_dtl"]["tenant"], p["btch_dtl"]["config"]) for p in OutboundMessage.objects.values_list("payload", flat=True)}
    assert len(rows) == len(lateral_rows) == sum(report.messages.values()) == len(sent), (len(rows), report)
    quiet_seconds, _ = timed(lambda: batch_scan(now=T1 + dt.timedelta(minutes=1)), repeat=repeat)
    return {
        "windows": configs * per_config,
        "built": built,
        "first_per_config": per_config_seconds,
        "first_bulk": bulk_seconds,
        "first_messages": ", ".join(f"{state} {count}" for state, count in sorted(bulk_report.messages.items())),
        "plain": plain_seconds,
        "lateral": lateral_seconds,
        "scan": scan_seconds,
        "quiet": quiet_seconds,
        "alerts": len(rows),
        "messages": ", ".join(f"{state} {count}" for state, count in sorted(report.messages.items())),
        "evaluated": report.evaluated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=100_000)
    parser.add_argument("--windows-per-config", type=int, default=10)
    parser.add_argument("--scale", type=int, default=10, help="the larger table has this many times the windows (1: none)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each; the median is printed")
    parser.add_argument("--size", choices=("small", "full"), default="full", help="small: 1,000 configs (the CI smoke run)")
    args = parser.parse_args()
    if args.size == "small":
        args.configs, args.windows_per_config, args.scale, args.repeat = 1000, 3, 2, 1
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or not name.endswith("_bench"):
        sys.exit(f"run on a PostgreSQL database made for benchmarks (name ending in _bench), not {name!r}")
    call_command("migrate", verbosity=0)
    schema_errors("control_message", {})  # compile the schema once, as a running heartbeat process has

    results = []
    sizes = [args.windows_per_config, args.windows_per_config * args.scale][: 2 if args.scale > 1 else 1]
    for per_config in sizes:
        print(f"building {args.configs:,} configs x {per_config} windows ...", flush=True)
        result = measure(args.configs, per_config, args.repeat)
        results.append(result)
        print(
            f"  {result['windows']:>11,} windows (built in {result['built']:.0f} s), {result['alerts']:,} open or delayed\n"
            f"  plain query (DISTINCT ON)   {result['plain'] * 1000:9.1f} ms\n"
            f"  plain query (LATERAL)       {result['lateral'] * 1000:9.1f} ms\n"
            f"  scan                        {result['scan'] * 1000:9.1f} ms  "
            f"({result['evaluated']:,} configs evaluated, messages {result['messages']})\n"
            f"  scan with nothing due       {result['quiet'] * 1000:9.1f} ms\n"
            f"  first scan after a deployment (all {args.configs:,} due; messages {result['first_messages']}):\n"
            f"    per config (baseline)     {result['first_per_config'] * 1000:9.1f} ms\n"
            f"    bulk                      {result['first_bulk'] * 1000:9.1f} ms  (target <= 2,000 ms at 100,000 configs; "
            f"the same alert rows and messages)\n"
            f"    ratio bulk / per config   {result['first_bulk'] / result['first_per_config']:9.2f}\n"
            f"  ratio scan / plain query    {result['scan'] / result['plain']:9.2f}  (target <= 2)\n"
            f"  ratio scan / LATERAL query  {result['scan'] / result['lateral']:9.2f}",
            flush=True,
        )
    if len(results) < 2:
        return
    small, large = results
    print(f"tenfold table: scan {large['scan'] / small['scan']:.2f}x the time (target <= 1.5), "
          f"plain query {large['plain'] / small['plain']:.2f}x")


if __name__ == "__main__":
    main()
