"""Two scans, or two arrival requests, at the same time on PostgreSQL, in real threads."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from monitoring.batches.models import BatchAlert, BatchFile, BatchWindow
from monitoring.batches.scan import batch_scan
from monitoring.batches.services import arrivals_record
from portal import clock
from portal.models import OutboundMessage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def run_together(*jobs: Callable[[], object]) -> list[object]:
    """Start every job at the same instant, each in its own thread and database connection."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[i] = job()
        except BaseException as exc:  # noqa: BLE001  - reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def arrivals(tenant: str, source: str, extract: dt.datetime, count: int) -> list[dict]:
    return [
        {"tenant": f"{tenant}{i}", "source": source, "extract_timestamp": extract.isoformat()} for i in range(count)
    ]


@pytest.fixture
def configs(make_config) -> int:
    clock.set_now(T0 + dt.timedelta(hours=1))
    count = 120
    for i in range(count):
        make_config("GL_DAILY", tenant=f"t{i}", sources=("gl_lines", "gl_headers"), realert_minutes=30)
    return count


def test_concurrent_scans_send_one_message_per_state_change(configs):
    arrivals_record(items=arrivals("t", "gl_lines", T0, configs))
    now = T0 + dt.timedelta(hours=24, minutes=30)

    reports = run_together(*[lambda: batch_scan(now=now, chunk_size=7)] * 4)

    assert sum(r.evaluated for r in reports) == configs  # each config claimed by one scan only
    open_keys = OutboundMessage.objects.filter(dedupe_key__contains=":OPEN:").values_list("payload", flat=True)
    assert Counter(p["btch_dtl"]["tenant"] for p in open_keys) == Counter({f"t{i}": 1 for i in range(configs)})
    assert set(BatchAlert.objects.values_list("state", "sequence")) == {("OPEN", 0)}

    later = now + dt.timedelta(minutes=31)
    run_together(*[lambda: batch_scan(now=later, chunk_size=5)] * 3)

    repeats = [p for p in OutboundMessage.objects.values_list("payload", flat=True) if p["retryCount"] == 1]
    assert len(repeats) == configs


def test_concurrent_requests_for_the_same_configs_open_one_window_each(configs):
    extract = T0 + dt.timedelta(hours=2)
    lines = arrivals("t", "gl_lines", extract, configs)
    headers = arrivals("t", "gl_headers", extract, configs)

    run_together(lambda: arrivals_record(items=lines), lambda: arrivals_record(items=headers))

    assert BatchWindow.objects.count() == configs
    assert set(BatchWindow.objects.values_list("status", "received_count", "trigger_status")) == {("COMPLETED", 2, "SENT")}
    assert OutboundMessage.objects.filter(dedupe_key__startswith="batch-trigger:").count() == configs


def test_the_same_source_posted_twice_at_once_counts_once(configs):
    extract = T0 + dt.timedelta(hours=2)
    lines = arrivals("t", "gl_lines", extract, configs)

    run_together(lambda: arrivals_record(items=lines), lambda: arrivals_record(items=lines))

    assert set(BatchWindow.objects.values_list("status", "received_count")) == {("OPEN", 1)}
    assert BatchFile.objects.filter(counted=True).count() == configs
    assert BatchFile.objects.filter(exception="DUPLICATE").count() == configs
