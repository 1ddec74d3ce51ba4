"""Benchmark of bulk arrivals through ``POST /api/v1/arrivals/`` on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python bench/arrivals.py

Creates configs (four sources each, hourly windows), then posts a day of their files
in requests of 10,000 arrivals, in time order, with 1% duplicates and 1% files sent
early for the next window (held, then applied), through the whole API stack in-process (JWT
authentication, parsing, placement, outbox, rendering). Prints arrivals per second.
The database must be one made for it (its name ends in ``_bench``): the batch tables
and the outbox are emptied first. Target: at least 5,000 arrivals per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from monitoring.batches.models import BatchFile, BatchWindow  # noqa: E402
from monitoring.batches.services import batch_config_create  # noqa: E402
from portal import clock, roles  # noqa: E402
from portal.models import OutboundMessage  # noqa: E402
from portal.validation import schema_errors  # noqa: E402

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
SOURCES = ("lines", "headers", "totals", "fx")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--request-size", type=int, default=10_000)
    parser.add_argument("--size", choices=("small", "full"), default="full", help="small: the CI smoke run")
    args = parser.parse_args()
    if args.size == "small":
        args.configs, args.hours, args.request_size = 20, 2, 100
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or not name.endswith("_bench"):
        sys.exit(f"run on a PostgreSQL database made for benchmarks (name ending in _bench), not {name!r}")
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE monitoring_batchalert, monitoring_batchfile, monitoring_batchsource, monitoring_batchwindow, "
            "monitoring_batchconfig, portal_outboundmessage RESTART IDENTITY CASCADE"
        )
    schema_errors("control_message", {})  # compiled once per process
    clock.set_now(T0 + dt.timedelta(days=2))
    for c in range(args.configs):
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
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(feeder).access_token}")

    items = stream(args.configs, args.hours)
    bodies = [json.dumps(items[i : i + args.request_size]) for i in range(0, len(items), args.request_size)]
    print(f"{len(items):,} arrivals for {args.configs:,} configs in {len(bodies)} requests of up to {args.request_size:,}")
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        answer = client.post("/api/v1/arrivals/", body, content_type="application/json", HTTP_HOST="localhost")
        latencies.append(time.perf_counter() - started)
        assert answer.status_code == 201, answer.content[:500]
    total = sum(latencies)
    print(
        f"  total {total:.2f} s: {len(items) / total:,.0f} arrivals/s (target >= 5,000)\n"
        f"  per request: median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms\n"
        f"  windows {BatchWindow.objects.count():,} ({BatchWindow.objects.filter(status='COMPLETED').count():,} completed), "
        f"files {BatchFile.objects.count():,}, held now {BatchFile.objects.filter(held=True).count():,}, "
        f"outbox messages {OutboundMessage.objects.count():,}"
    )


if __name__ == "__main__":
    main()
