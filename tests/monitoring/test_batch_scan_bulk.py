"""The bulk scan (many configs due, as after a deployment) leaves what the per-config scan leaves."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from monitoring.batches import scan
from monitoring.batches.models import ALERT_DUE_NOW, BatchAlert
from monitoring.batches.scan import batch_scan
from monitoring.batches.services import batch_config_update
from portal import clock
from portal.alerts.models import AlertEpisode, AlertRule, NotificationChannel
from portal.models import OutboundMessage

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
PER_CONFIG, BULK = 10**9, 1  # BATCH_SCAN_BULK_MIN for each path


def iso(hours: float) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def scan_at(hours: float):
    clock.set_now(T0 + dt.timedelta(hours=hours))
    return batch_scan(now=T0 + dt.timedelta(hours=hours))


@pytest.fixture
def mixed(make_config, arrive, now, settings):
    """Configs in every situation a scan meets; earlier scans (per config) left some alerting."""
    settings.BATCH_SCAN_BULK_MIN = PER_CONFIG
    now(iso(0))
    configs = {}
    for name, options in {
        "quiet": {}, "open": {}, "delayed": {"max_wait_hours": 1}, "complete": {}, "repeat": {"realert_minutes": 30},
        "recovers": {}, "deactivated": {}, "inactive": {"active": False}, "no_window": {},
        "no_check": {"exception_check": False}, "still_open": {"realert_minutes": 600},
    }.items():
        configs[name] = make_config(name.upper(), tenant=name.replace("_", "-"), sources=(f"{name}_a", f"{name}_b"), **options)
    late = {"quiet": 20, "complete": 0}  # window starts: the others began at 0 h
    for name in configs:
        if name != "no_window":
            arrive(f"{name}_a", iso(late.get(name, 0)), tenant=name.replace("_", "-"))
    arrive("complete_b", iso(0), tenant="complete")
    scan_at(24.5)  # OPEN for every config whose window of [0, 24 h) misses a source
    now(iso(25))
    arrive("recovers_b", iso(1), tenant="recovers")
    batch_config_update(actor="test", config_id=configs["deactivated"].id, fields={"active": False}, sources=None)
    BatchAlert.objects.update(due_at=ALERT_DUE_NOW)  # a deployment: every config is looked at again
    return configs


def outcome(report) -> dict:
    """What a user sees of a scan: its report, every alert row, the messages (less their UUIDs) and the episodes."""
    alerts = {
        a.config.name: (a.state, a.window_id, a.sequence, a.transition, a.last_message_at, a.evaluated_at, a.due_at, a.claim_token)
        for a in BatchAlert.objects.select_related("config")
    }
    messages = {m.dedupe_key: {**m.payload, "uuid": ""} for m in OutboundMessage.objects.filter(kind="control_message")}
    episodes = sorted(AlertEpisode.objects.values_list("kind", "subject", "state", "summary"))
    return {"report": (report.evaluated, report.closed, dict(report.messages)), "alerts": alerts, "messages": messages, "episodes": episodes}


def scan_with(settings, bulk_min: int, hours: float) -> dict:
    settings.BATCH_SCAN_BULK_MIN = bulk_min
    with transaction.atomic():
        seen = outcome(scan_at(hours))
        transaction.set_rollback(True)
    return seen


@pytest.mark.parametrize("hours", [24.9, 25.1, 25.5, 26.5, 48.5])
def test_the_bulk_scan_leaves_the_same_alerts_messages_and_episodes_as_the_per_config_scan(mixed, settings, hours):
    per_config = scan_with(settings, PER_CONFIG, hours)
    bulk = scan_with(settings, BULK, hours)
    assert bulk == per_config


def test_the_bulk_scan_sends_what_changed_and_nothing_for_the_quiet_configs(mixed, settings):
    bulk = scan_with(settings, BULK, 25.5)

    assert bulk["report"] == (11, 0, {"DELAYED": 1, "OPEN": 1, "RECOVERED": 1})
    sent = sorted(
        (m["eventMinor"], m["exceptionName"], m["retryCount"])
        for m in bulk["messages"].values()
        if m["eventTimeStamp"] == "2026-03-03 01:30:00"  # raised by this scan
    )
    assert sent == [("DELAYED", "DELAYED", 0), ("RECOVERS", "RECOVERED", 0), ("REPEAT", "OPEN", 1)]
    states = {name: row[0] for name, row in bulk["alerts"].items()}
    assert states == {
        "QUIET": "NONE", "OPEN": "OPEN", "DELAYED": "DELAYED", "COMPLETE": "NONE", "REPEAT": "OPEN",
        "RECOVERS": "NONE", "DEACTIVATED": "NONE", "INACTIVE": "NONE", "NO_WINDOW": "NONE", "NO_CHECK": "OPEN",
        "STILL_OPEN": "OPEN",
    }
    quiet_due = bulk["alerts"]["QUIET"][6]
    assert quiet_due == T0 + dt.timedelta(hours=44)  # the end of its window, [20 h, 44 h)


@pytest.mark.parametrize("hours", [25.5, 48.5])
def test_configs_alike_are_decided_together_and_each_left_as_the_per_config_scan_leaves_it(
    mixed, settings, make_config, arrive, monkeypatch, hours
):
    monkeypatch.setattr(scan, "SHARED_DUE_MIN", 2)  # the UPDATE of a shared due time, not only the join of values
    for n in range(6):  # twins of OPEN (a source missing since 0 h) and of QUIET (a window begun at 20 h)
        tenant, extract = f"twin-{n}", iso(0 if n % 2 else 20)
        make_config(f"TWIN_{n}", tenant=tenant, sources=(f"twin{n}_a", f"twin{n}_b"))
        arrive(f"twin{n}_a", extract, tenant=tenant)
    BatchAlert.objects.update(due_at=ALERT_DUE_NOW)

    assert scan_with(settings, BULK, hours) == scan_with(settings, PER_CONFIG, hours)


def bulk_scan_queries(settings, hours: float) -> int:
    settings.BATCH_SCAN_BULK_MIN = BULK
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        scan_at(hours)
        transaction.set_rollback(True)
    return len(queries)


def test_a_quiet_config_costs_the_bulk_scan_no_query_of_its_own(mixed, settings, make_config, arrive):
    before = bulk_scan_queries(settings, 25.5)
    for n in range(5):  # windows open and in progress, as most configs are at a deployment
        make_config(f"QUIET_{n}", tenant=f"quiet-{n}", sources=(f"quiet{n}_a", f"quiet{n}_b"))
        arrive(f"quiet{n}_a", iso(20), tenant=f"quiet-{n}")
    BatchAlert.objects.update(due_at=ALERT_DUE_NOW)

    assert bulk_scan_queries(settings, 25.5) == before


def test_the_bulk_scan_opens_episodes_and_tells_their_channels_as_the_per_config_scan(mixed, settings):
    channel = NotificationChannel.objects.create(name="ops", kind="webhook", target="https://example.com/hook")
    AlertRule.objects.create(name="batches", kinds=["BATCH_DELAYED"], repeat_minutes=30).channels.add(channel)

    def told(bulk_min: int) -> list:
        settings.BATCH_SCAN_BULK_MIN = bulk_min
        with transaction.atomic():
            scan_at(25.5)
            seen = sorted(
                (m.dedupe_key.split(":", 2)[2], m.payload["body"]["subject"], m.payload["body"]["summary"])
                for m in OutboundMessage.objects.filter(kind="NOTIFICATION")
            )
            reviews = sorted(AlertEpisode.objects.filter(kind="BATCH_DELAYED").values_list("subject", "review_at"))
            transaction.set_rollback(True)
        return seen, reviews

    bulk = told(BULK)
    assert bulk == told(PER_CONFIG)
    assert [subject for _, subject, _ in bulk[0]] == ["batch:delayed/DELAYED"]
    assert bulk[1] == [("batch:delayed/DELAYED", T0 + dt.timedelta(hours=26))]


def test_a_second_bulk_scan_at_the_same_instant_finds_nothing_due(mixed, settings):
    settings.BATCH_SCAN_BULK_MIN = BULK
    assert scan_at(25.5).evaluated == 11
    assert scan_at(25.5).evaluated == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_bulk_scans_at_once_evaluate_each_config_once(mixed, settings):
    settings.BATCH_SCAN_BULK_MIN = BULK
    clock.set_now(T0 + dt.timedelta(hours=25.5))
    before = OutboundMessage.objects.count()
    start = threading.Barrier(2, timeout=30)

    def scan(_):
        try:
            start.wait()
            return batch_scan(now=T0 + dt.timedelta(hours=25.5))
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(scan, range(2)))

    assert sum(r.evaluated for r in reports) == 11
    assert OutboundMessage.objects.count() - before == 3
