"""Benchmark of the cut-offs' pending figures (issue 15, DOMAIN §8).

On PostgreSQL with bench/summary.py's 2,000,000 transactions (made by it, or here when missing)
over the five default interfaces and 50 cut-offs
(10 per interface, each on all currencies or on one to three of them): the pending count and
value per currency of every cut-off at one instant, as the API, the console, the metrics and
every heartbeat tick compute them (one grouped query over the rows still open, shared by all
cut-offs, each taking its share), against one plain SQL query joining the cut-offs to the
transactions that computes the same figures. Both results are compared: they must be equal.

Use a database of its own (it creates its tables and rows, once; bench/summary.py's database will do):

    createdb -h 127.0.0.1 -U postgres cutoffs_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cutoffs_bench .venv/bin/python bench/cutoffs.py

Options: --size N (transactions, default 2,000,000; --size 20000 is a smoke run), --fresh
(regenerate the rows), --repeat N (timed runs per figure; the median is printed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")  # a development secret key and localhost hosts; nothing else changes

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench.summary import END, median_ms, postgres_ready, rows_ready  # noqa: E402  (the same 2M rows as the summaries' benchmark)
from monitoring.summaries.models import MonitoredInterface, Transaction  # noqa: E402
from scheduling.cutoffs.models import CutOff  # noqa: E402
from scheduling.cutoffs.selectors import cutoff_states, cutoffs_listing, pending_now  # noqa: E402
from scheduling.cutoffs.services import cutoff_create  # noqa: E402
from scheduling.scheduler.calendars import calendar_group_create  # noqa: E402
from scheduling.scheduler.models import CalendarGroup  # noqa: E402

# The instant bench/summary.py's rows end at, a Monday noon: the cut-offs (16:00 to 19:50 Berlin) are all ahead.
NOW = END
CUTOFFS = 50
CURRENCY_SETS = [[], ["EUR"], ["USD"], ["EUR", "GBP"], ["JPY", "BHD", "USD"]]
TABLE = Transaction._meta.db_table
PLAIN_SQL = f"""
SELECT c.id, t.currency, count(*), sum(t.amount)
FROM {CutOff._meta.db_table} c JOIN {TABLE} t ON t.interface_id = c.interface_id
WHERE t.received_at < %(now)s AND (t.completed_at IS NULL OR t.completed_at > %(now)s)
  AND (jsonb_array_length(c.currencies) = 0 OR c.currencies ? t.currency)
GROUP BY c.id, t.currency
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2000000", help="transactions, or small (20,000: the CI smoke run)")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    options.size = 20_000 if options.size == "small" else int(options.size)
    postgres_ready("bench/cutoffs.py")
    rows_ready(options.size, options.fresh)
    cutoffs_ready()
    compare(options.repeat)


def cutoffs_ready() -> None:
    if CutOff.objects.count() == CUTOFFS:
        return
    CutOff.objects.all().delete()
    group = CalendarGroup.objects.filter(name="BENCH").first() or calendar_group_create(
        actor="bench", name="BENCH", timezone="Europe/Berlin", weekend_days=[6, 7]
    )
    interfaces = list(MonitoredInterface.objects.order_by("code"))
    for number in range(CUTOFFS):
        cutoff_create(
            actor="bench", name=f"bench-{number:02d}", interface=interfaces[number % len(interfaces)],
            currencies=CURRENCY_SETS[number // len(interfaces) % len(CURRENCY_SETS)],
            time=dt.time(16 + number % 4, 10 * (number % 6)), calendar_group=group, warn_minutes=30,
        )


def portal_figures() -> dict[int, dict[str, tuple[int, Decimal]]]:
    return {state.cutoff.id: state.pending for state in cutoff_states(cutoffs_listing(), now=NOW)}


def figures_only() -> dict[int, dict[str, tuple[int, Decimal]]]:
    figures = pending_now(now=NOW)
    return {cutoff.id: cutoff.pending_of(figures) for cutoff in CutOff.objects.all()}


def plain_sql() -> dict[int, dict[str, tuple[int, Decimal]]]:
    found: dict[int, dict[str, tuple[int, Decimal]]] = {cutoff_id: {} for cutoff_id in CutOff.objects.values_list("id", flat=True)}
    with connection.cursor() as cursor:
        cursor.execute(PLAIN_SQL, {"now": NOW})
        for cutoff_id, currency, count, value in sorted(cursor.fetchall()):
            found[cutoff_id][currency] = (count, value)
    return found


def compare(repeat: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE received_at < %(now)s AND (completed_at IS NULL OR completed_at > %(now)s)", {"now": NOW})
        open_rows = cursor.fetchone()[0]
    expected, only, whole = plain_sql(), figures_only(), portal_figures()
    sql_ms, only_ms, whole_ms = (median_ms(work, repeat) for work in (plain_sql, figures_only, portal_figures))
    assert only == expected, "the portal's pending figures differ from the plain SQL's"
    assert whole == expected, "the cut-off states' pending differs from the plain SQL's"
    pending = sum(count for per in expected.values() for count, _ in per.values())
    print()
    print(f"## pending figures of {CUTOFFS} cut-offs at {NOW:%Y-%m-%d %H:%M} UTC (median of {repeat} runs, ms)")
    print(f"transactions open at that instant: {open_rows:,}; pending counted over all cut-offs: {pending:,}")
    print(f"{'computation':<48} {'ms':>9} {'ratio':>7}")
    print(f"{'plain SQL (cut-offs joined to transactions)':<48} {sql_ms:>9.1f} {1:>7.2f}")
    print(f"{'portal: one pending query, each cut-off its share':<48} {only_ms:>9.1f} {only_ms / sql_ms:>7.2f}")
    print(f"{'portal: whole states (next_at, seconds_left too)':<48} {whole_ms:>9.1f} {whole_ms / sql_ms:>7.2f}")
    print("equal: the portal's figures and the plain SQL's are the same, cut-off by cut-off and currency by currency")


if __name__ == "__main__":
    main()
