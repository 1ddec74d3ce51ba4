"""Benchmark of a ``/metrics`` scrape over millions of transactions (issue 16, DOMAIN §9).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python bench/metrics.py [--size small]

Generates the transactions of ``bench/summary.py`` (3,000,000 by default, kept between runs; a
database of its own), then times, in one run: the GROUP BY of the whole
transactions table that the scrape used to run (the baseline), the transactions' collector as it
is now (the totals the feed keeps), and a whole ``/metrics`` scrape through Django in-process.
Prints the median of ``--repeat`` runs of each and the ratios. Target: the scrape under 100 ms.
"""

from __future__ import annotations

import argparse
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

from django.db.models import Count, Sum  # noqa: E402
from django.test import Client  # noqa: E402

from bench.summary import postgres_ready, rows_ready  # noqa: E402
from monitoring.summaries.metrics import transaction_metrics  # noqa: E402
from monitoring.summaries.models import Transaction  # noqa: E402

SIZES = {"small": 20_000, "default": 3_000_000}


def median_ms(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def group_by() -> None:
    rows = Transaction.objects.values_list("interface_id", "status", "currency").annotate(n=Count("id"), value=Sum("amount"))
    list(rows.order_by("interface_id", "status", "currency"))


def scrape(client: Client) -> None:
    answer = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_HOST="localhost")
    assert answer.status_code == 200 and b"portal_transactions_value" in answer.content, answer.content[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="default")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="generate the transactions again")
    args = parser.parse_args()
    postgres_ready("bench/metrics.py")
    rows_ready(SIZES[args.size], args.fresh)
    client = Client()
    scrape(client)  # warm: the first scrape imports the collectors
    baseline = median_ms(group_by, args.repeat)
    collector = median_ms(lambda: list(transaction_metrics()), args.repeat)
    whole = median_ms(lambda: scrape(client), args.repeat)
    print(f"/metrics over {Transaction.objects.count():,} transactions, median of {args.repeat}")
    print(f"  GROUP BY of the table (the scrape before)   {baseline:9.1f} ms")
    print(f"  transactions' collector (kept totals)       {collector:9.1f} ms   {baseline / collector:7.0f}x faster")
    print(f"  whole /metrics scrape                        {whole:9.1f} ms   {baseline / whole:7.0f}x faster (target < 100 ms)")


if __name__ == "__main__":
    main()
