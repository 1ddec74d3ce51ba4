"""Benchmark of the intake over HTTP: arrivals and transactions posted to the Procfile's web process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python bench/arrivals.py [--size small]

Starts the Procfile's ``web:`` command (gunicorn with gunicorn.conf.py, 2 workers) on PostgreSQL
and posts, from a few client threads with a Feeder's JWT: single arrivals, lists of 1,000
arrivals (configs of four sources, hourly windows, 1% duplicates and 1% files early for the next
window), single transactions and lists of 1,000 (new ones, then the same completed). The floor,
measured in the same run through the same gunicorn command: a bare Django WSGI app that parses
the body and INSERTs its items (one multi-row INSERT; ``bench/http_floor.py``). Prints items per
second beside the floor and the ratio. Targets: single arrivals >= 250/s, lists >= 10,000 items/s.
The database must be one made for it (its name ends in ``_bench``): the batch, transaction and
outbox tables are emptied first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from bench.http_floor import TABLE as FLOOR_TABLE  # noqa: E402
from bench.http_load import post_all, web_process  # noqa: E402
from monitoring.batches.models import BatchFile, BatchWindow  # noqa: E402
from monitoring.batches.services import batch_config_create  # noqa: E402
from monitoring.summaries.models import MonitoredInterface, Transaction  # noqa: E402
from portal import roles  # noqa: E402
from portal.models import OutboundMessage  # noqa: E402

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
SOURCES = ("lines", "headers", "totals", "fx")
SIZES = {
    "small": {"configs": 40, "singles": 60, "lists": 2},
    "default": {"configs": 1000, "singles": 1500, "lists": 24},
}


def iso(instant: dt.datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def stream(configs: int, hours: int, seed: int = 7) -> list[dict]:
    """Each config's four files per hourly window, in extract order, with some noise."""
    rng = random.Random(seed)
    items = []
    for hour in range(hours):
        for c in range(configs):
            for s, source in enumerate(SOURCES):
                extract = T0 + dt.timedelta(hours=hour, minutes=5 + 10 * s + (rng.randrange(5) if s else 0))
                item = {"tenant": f"t{c % 50}", "source": f"{source}_{c}", "extract_timestamp": iso(extract)}
                roll = rng.random()
                items.append(item)
                if roll < 0.01:
                    items.append(dict(item))  # the same file again: DUPLICATE
                elif roll < 0.02:  # next window's copy, early: held, then applied (its own copy is then a DUPLICATE)
                    items.append({**item, "extract_timestamp": iso(extract + dt.timedelta(hours=1))})
    return items


def transactions(count: int, *, prefix: str, status: str = "PENDING") -> list[dict]:
    codes = list(MonitoredInterface.objects.order_by("code").values_list("code", flat=True))
    received = T0 + dt.timedelta(hours=1)
    items = []
    for i in range(count):
        item = {
            "interface": codes[i % len(codes)], "reference": f"{prefix}-{i}", "amount": f"{10 + i % 900}.{i % 100:02d}",
            "currency": ("EUR", "USD", "GBP")[i % 3], "status": status, "received_at": iso(received),
        }
        if status != "PENDING":
            item["completed_at"] = iso(received + dt.timedelta(minutes=3))
        items.append(item)
    return items


def prepare(configs: int) -> dict:
    """Empty tables, the configs, and a Feeder's Authorization header."""
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE monitoring_batchalert, monitoring_batchfile, monitoring_batchsource, monitoring_batchwindow, "
            "monitoring_batchconfig, monitoring_transaction, monitoring_transactiontotal, portal_outboundmessage RESTART IDENTITY CASCADE"
        )
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, item jsonb NOT NULL)")
    for c in range(configs):
        batch_config_create(
            actor="bench",
            fields={
                "tenant": f"t{c % 50}", "name": f"CFG_{c}", "window_hours": 1, "max_wait_hours": 1,
                "target_app": "app", "target_workflow": "wf",
            },
            sources=[f"{source}_{c}" for source in SOURCES],
        )
    feeder, _ = User.objects.get_or_create(username="bench-feeder")
    feeder.groups.add(Group.objects.get(name=roles.FEEDER))
    return {"Authorization": f"Bearer {RefreshToken.for_user(feeder).access_token}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="default")
    parser.add_argument("--list-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (2 workers x 4 threads serve them)")
    args = parser.parse_args()
    size = SIZES[args.size]
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or not name.endswith("_bench"):
        sys.exit(f"run on a PostgreSQL database made for benchmarks (name ending in _bench), not {name!r}")
    headers = prepare(size["configs"])
    singles, lists, per = size["singles"], size["lists"], args.list_size

    items = stream(size["configs"], hours=24)
    needed = singles + lists * per
    if len(items) < needed:
        sys.exit(f"{len(items):,} arrivals in a day of {size['configs']} configs, {needed:,} needed: fewer singles or lists")
    arrival_singles = [json.dumps(item).encode() for item in items[:singles]]
    rest = items[singles:needed]
    arrival_lists = [json.dumps(rest[i : i + per]).encode() for i in range(0, len(rest), per)]
    single_tx = [json.dumps(item).encode() for item in transactions(singles, prefix="single")]
    new = transactions(lists // 2 * per, prefix="list")
    done = transactions(lists // 2 * per, prefix="list", status="COMPLETED")
    list_tx = [json.dumps(chunk[i : i + per]).encode() for chunk in (new, done) for i in range(0, len(chunk), per)]

    def rate(port: int, path: str, bodies: list[bytes], count: int) -> float:
        return count / post_all(port, path, bodies, headers=headers, concurrency=args.concurrency)

    with web_process(module="bench.http_floor") as port:
        floor_single = rate(port, "/", arrival_singles, singles)
        floor_list = rate(port, "/", arrival_lists, lists * per)
    with web_process() as port:
        figures = [
            ("single arrivals", rate(port, "/api/v1/arrivals/", arrival_singles, singles), floor_single, 250),
            (f"arrivals in lists of {per:,}", rate(port, "/api/v1/arrivals/", arrival_lists, lists * per), floor_list, 10_000),
            ("single transactions", rate(port, "/api/v1/transactions/", single_tx, singles), floor_single, 250),
            (f"transactions in lists of {per:,}", rate(port, "/api/v1/transactions/", list_tx, len(list_tx) * per), floor_list, 10_000),
        ]
    print(f"HTTP intake, Procfile web process (2 gunicorn workers), {args.concurrency} client threads, PostgreSQL")
    print(f"  {'':34} {'items/s':>9} {'floor/s':>9} {'ratio':>6} {'target':>8}")
    for label, value, floor, target in figures:
        print(f"  {label:34} {value:9,.0f} {floor:9,.0f} {value / floor:6.2f} {target:8,}")
    print(
        f"  windows {BatchWindow.objects.count():,}, files {BatchFile.objects.count():,}, "
        f"transactions {Transaction.objects.count():,}, outbox messages {OutboundMessage.objects.count():,}"
    )


if __name__ == "__main__":
    main()
