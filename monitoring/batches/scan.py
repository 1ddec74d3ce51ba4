"""The batch scan (DOMAIN §1): alert states of configs and their control messages.

The cost follows the alerts, not the tables. Every config has one ``BatchAlert`` row
whose ``due_at`` says when its state could next change: the end or the SLA of its
latest window, its re-alert time, or "now" after a write that moved its windows.
A scan reads only the rows due at its ``now`` (a partial index), claims them with a
conditional UPDATE, evaluates them from each config's latest-window pointer, and
writes its messages and the new alert rows in bulk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import operator
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models, transaction
from django.db.models import QuerySet

from monitoring.batches import messages as msg
from monitoring.batches.alerts import scan_alerts_follow
from monitoring.batches.models import (
    AlertState,
    BatchAlert,
    BatchConfig,
    BatchFile,
    BatchSource,
    BatchWindow,
    WindowStatus,
)
from portal import clock
from portal.lib.bulk import row_instance, rows_set, rows_update
from portal.services import PendingMessage, audit_record, outbox_enqueue_bulk

SCAN_CHUNK = 500
# Each chunk reads its configs in one join: fewer, larger chunks mean fewer passes over the tables.
BULK_CHUNK = 25_000
# What ``decide`` and ``next_scan_at`` read, for the bulk scan to read nothing else. A rule that
# reads another field still works (Django loads it on access) but one query per config: list it here.
QUIET_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    BatchAlert: ("config_id", "state", "window_id", "sequence", "transition", "last_message_at"),
    BatchConfig: (
        "id", "active", "exception_check", "realert_minutes", "latest_window_id", "window_hours", "max_wait_hours", "usual_arrivals",
        "risk_tolerance_minutes",
    ),
    BatchWindow: ("id", "config_id", "status", "window_end", "expected_count", "received_count", "max_wait_hours"),
}
RECOVERED = "RECOVERED"
# A due time shared by this many configs is written by one UPDATE ... WHERE config_id IN (...).
SHARED_DUE_MIN = 100


@dataclass
class ScanReport:
    evaluated: int = 0
    closed: int = 0  # alerts of deactivated configs, closed without a message
    messages: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        sent = ", ".join(f"{state} {count}" for state, count in sorted(self.messages.items())) or "none"
        return f"evaluated {self.evaluated} config(s); messages: {sent}; closed silently: {self.closed}"


@dataclass
class Decision:
    alert: BatchAlert
    state: str  # the message's state word, or "" for none
    window: BatchWindow | None
    closed: bool = False  # the alert of a deactivated config ended without a message


def batch_scan(
    *,
    now: dt.datetime,
    interface_codes: tuple[str, ...] | list[str] = (),
    config_ids: list[int] | None = None,
    chunk_size: int = SCAN_CHUNK,
) -> ScanReport:
    """Scan the configs of ``interface_codes`` (all when empty) whose alert state may change at ``now``."""
    due = BatchAlert.objects.filter(due_at__lte=now)
    if interface_codes:
        due = due.filter(config__interface__code__in=list(interface_codes))
    if config_ids is not None:
        due = due.filter(config_id__in=list(config_ids))
    report = ScanReport()
    if due[: settings.BATCH_SCAN_BULK_MIN].count() >= settings.BATCH_SCAN_BULK_MIN:
        batch_scan_bulk(due, now=now, report=report)
        return report
    ids = list(due.order_by("config_id").values_list("config_id", flat=True))
    for start in range(0, len(ids), chunk_size):
        with transaction.atomic():
            scan_chunk(ids[start : start + chunk_size], now=now, report=report)
    return report


def batch_scan_bulk(due: QuerySet[BatchAlert], *, now: dt.datetime, report: ScanReport, chunk_size: int = BULK_CHUNK) -> None:
    """The scan of many ``due`` configs at once (the first after a deployment finds every config due).

    Most configs stay as they were: no message, the same alert row, only a new
    due time. Those are found by ``decide`` itself, run once per group of configs
    alike in every column it reads (read as plain columns, no ``Model.__init__`` per
    row), and written one UPDATE per shared due time; the few whose state changes
    or whose alert repeats go through ``scan_chunk``, so their messages are exactly
    the per-config path's.
    """
    after = 0
    while True:
        with transaction.atomic():
            # The claim: the next due rows locked in id order; a scan at the same time waits, then finds them not due.
            locked = due.filter(config_id__gt=after).select_for_update(of=("self",)).order_by("config_id")
            ids = list(locked.values_list("config_id", flat=True)[:chunk_size])
            if not ids:
                return
            _scan_bulk_chunk(due.filter(config_id__gte=ids[0], config_id__lte=ids[-1]), set(ids), now=now, report=report)
        after = ids[-1]


def _scan_bulk_chunk(rows: QuerySet[BatchAlert], claimed: set[int], *, now: dt.datetime, report: ScanReport) -> None:
    with _collector_paused():
        groups, busy = _alerts_alike(rows, claimed)
    quiet: dict[dt.datetime | None, list[int]] = defaultdict(list)
    for alert, ids in groups:
        decision = decide(alert, now=now)
        if decision.state or decision.closed:
            busy += ids  # decided again, from full rows, by the per-config path
        else:
            quiet[alert.next_scan_at(now)] += ids
    _due_times_write(quiet, now=now)
    report.evaluated += sum(len(ids) for ids in quiet.values())
    busy.sort()
    for start in range(0, len(busy), SCAN_CHUNK):
        scan_chunk(busy[start : start + SCAN_CHUNK], now=now, report=report)


def _alerts_alike(rows: QuerySet[BatchAlert], claimed: set[int]) -> tuple[list[tuple[BatchAlert, list[int]]], list[int]]:
    """The ``claimed`` alerts of ``rows`` in groups alike in every QUIET_FIELDS column but those that name rows,
    each group with one alert (its config and latest window) built from those columns to decide for all; and
    the configs that learned usual arrivals (may be AT_RISK: their missing sources are read by the per-config path).

    Configs of one schedule share their window ends and SLAs: the rules run once per group, not per config.
    """
    columns = [
        *QUIET_FIELDS[BatchAlert],
        *(f"config__{name}" for name in QUIET_FIELDS[BatchConfig]),
        *(f"config__latest_window__{name}" for name in QUIET_FIELDS[BatchWindow]),
    ]
    naming = {"config_id", "window_id", "config__id", "config__latest_window_id", "config__latest_window__id", "config__latest_window__config_id"}
    learned_at = columns.index("config__usual_arrivals")
    alike_in = operator.itemgetter(*(i for i, c in enumerate(columns) if c not in naming and i != learned_at))
    alert_window, latest = columns.index("window_id"), columns.index("config__latest_window_id")
    groups: dict[tuple, tuple[tuple, list[int]]] = {}
    learned = []
    for row in rows.values_list(*columns).order_by("config_id"):
        if row[0] not in claimed:
            continue  # due since the claim: the next scan's
        if row[learned_at]:
            learned.append(row[0])
            continue
        # Whether the alert names the latest window is all the rules ask of the ids.
        key = (alike_in(row), row[alert_window] == row[latest], row[latest] is None)
        if key in groups:
            groups[key][1].append(row[0])
        else:
            groups[key] = (row, [row[0]])
    return [(_alert_built(row), ids) for row, ids in groups.values()], learned


def _alert_built(row: tuple) -> BatchAlert:
    """An alert with its config and latest window from one row of QUIET_FIELDS columns."""
    split = len(QUIET_FIELDS[BatchAlert]), len(QUIET_FIELDS[BatchAlert]) + len(QUIET_FIELDS[BatchConfig])
    alert = row_instance(BatchAlert, QUIET_FIELDS[BatchAlert], row[: split[0]])
    config = row_instance(BatchConfig, QUIET_FIELDS[BatchConfig], row[split[0] : split[1]])
    window = row_instance(BatchWindow, QUIET_FIELDS[BatchWindow], row[split[1] :]) if row[split[1]] is not None else None
    alert._state.fields_cache["config"] = config
    config._state.fields_cache["latest_window"] = window
    return alert


def _due_times_write(due: dict[dt.datetime | None, list[int]], *, now: dt.datetime) -> None:
    """Each config's next due time: one UPDATE per time many configs share, joins of values for the rest."""
    scattered = []
    for due_at, ids in due.items():
        if len(ids) < SHARED_DUE_MIN:
            scattered += [BatchAlert(config_id=i, due_at=due_at, evaluated_at=now) for i in ids]
            continue
        rows_set(BatchAlert, ids, {"due_at": due_at, "evaluated_at": now})
    rows_update(scattered, ["due_at", "evaluated_at"])


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a chunk's objects are made: none of them forms a cycle, and the
    collector's passes over tens of thousands of new objects cost more than making them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def batch_scan_configs(*, now: dt.datetime, config_ids: list[int]) -> ScanReport:
    """Scan these configs at ``now``, due or not."""
    BatchAlert.objects.filter(config_id__in=config_ids).update(due_at=now)
    return batch_scan(now=now, config_ids=config_ids)


def batch_scan_now(*, actor, config_ids: list[int]) -> ScanReport:
    """An operator's "scan now" (admin): these configs, at the clock's now, audited."""
    report = batch_scan_configs(now=clock.now(), config_ids=config_ids)
    audit_record(
        actor=actor,
        action="batch_scan.now",
        object_type=BatchConfig._meta.label,
        object_id=",".join(str(i) for i in config_ids)[:64],
        after={"evaluated": report.evaluated, "messages": dict(report.messages)},
    )
    return report


def scan_chunk(ids: list[int], *, now: dt.datetime, report: ScanReport) -> None:
    token = uuid.uuid4()
    # The claim: only rows still due are taken, and they are left not due. A second scan
    # at the same time waits for this transaction and then finds nothing to take.
    if not BatchAlert.objects.filter(config_id__in=ids, due_at__lte=now).update(claim_token=token):
        return
    alerts = list(
        BatchAlert.objects.filter(claim_token=token)
        .select_related("config", "config__latest_window", "config__interface")
        .order_by("config_id")
    )
    before = {alert.config_id: alert.state for alert in alerts}
    # Only configs that learned usual arrivals can be AT_RISK: only their missing sources are read here.
    learned = {a.config.latest_window.id: a.config.latest_window for a in alerts if a.config.usual_arrivals and a.config.latest_window}
    missing = windows_missing(learned)
    decisions = [decide(alert, now=now, missing=missing.get(alert.config.latest_window_id, [])) for alert in alerts]
    messages = build_messages([d for d in decisions if d.state], now=now)
    for decision in decisions:
        alert = decision.alert
        alert.due_at = alert.next_scan_at(now, missing.get(alert.config.latest_window_id, []))
        alert.evaluated_at = now
        alert.claim_token = None
        report.evaluated += 1
        if decision.state:
            report.messages[decision.state] += 1
    report.closed += sum(1 for d in decisions if d.closed)
    rows_update(
        alerts, ["state", "window", "sequence", "transition", "last_message_at", "evaluated_at", "due_at", "claim_token"]
    )
    outbox_enqueue_bulk(messages=messages)
    scan_alerts_follow(decisions=decisions, before=before, messages=messages)


def decide(alert: BatchAlert, *, now: dt.datetime, missing: list[str] = ()) -> Decision:
    """Move the alert row to the config's state at ``now``; say which message that change sends."""
    config = alert.config
    latest = config.latest_window
    state = config.alert_state_at(now, latest, missing)
    if state == AlertState.NONE:
        if not alert.is_alerting:
            return Decision(alert, "", None)
        recovered = config.active and latest is not None
        alert.state, alert.window, alert.sequence = AlertState.NONE, None, 0
        alert.transition += 1
        if not recovered:  # a deactivated config's episode closes without a message
            return Decision(alert, "", None, closed=True)
        alert.last_message_at = now
        return Decision(alert, RECOVERED, latest)
    realert_at = alert.realert_at(config.realert_minutes)
    if (alert.state, alert.window_id) != (state, latest.id):
        alert.state, alert.window, alert.sequence = state, latest, 0
        alert.transition += 1
    elif realert_at is not None and now >= realert_at:
        alert.sequence += 1
    else:
        return Decision(alert, "", None)
    alert.last_message_at = now
    return Decision(alert, state, latest)


def missing_sources(decisions: list[Decision]) -> dict[int, list[str]]:
    """Window id -> the config's sources it has not received yet, for OPEN windows."""
    return windows_missing({d.window.id: d.window for d in decisions})


def windows_missing(windows: dict[int, BatchWindow]) -> dict[int, list[str]]:
    """Window id -> the sources of its config it has not received yet, for the OPEN ones among ``windows``."""
    windows = {wid: w for wid, w in windows.items() if w.status == WindowStatus.OPEN}
    if not windows:
        return {}
    names: dict[int, set[str]] = defaultdict(set)
    config_ids = {w.config_id for w in windows.values()}
    for config_id, name in BatchSource.objects.filter(config_id__in=config_ids).values_list("config_id", "name"):
        names[config_id].add(name)
    received: dict[int, set[str]] = defaultdict(set)
    for window_id, name in BatchFile.objects.filter(window_id__in=list(windows), counted=True).values_list(
        "window_id", "source_name"
    ):
        received[window_id].add(name)
    return {wid: sorted(names[w.config_id] - received[wid]) for wid, w in windows.items()}


def build_messages(decisions: list[Decision], *, now: dt.datetime) -> list[PendingMessage]:
    missing = missing_sources(decisions)
    messages = []
    for decision in decisions:
        alert, window = decision.alert, decision.window
        config: BatchConfig = alert.config
        view = msg.WindowView.of(window)
        # A finished window misses nothing the next batch needs: its message names no source.
        names = missing.get(window.id, []) if window.status == WindowStatus.OPEN else []
        argument = ",".join(names)
        if decision.state == AlertState.AT_RISK:
            late = config.late_sources(now, window, names)
            text = msg.at_risk_text(view, [(name, config.usual_arrival(window, name)) for name in late])
            argument = ",".join(late)
        elif decision.state == AlertState.OPEN:
            text = msg.open_text(view, names)
        elif decision.state == AlertState.DELAYED:
            text = msg.delayed_text(view, names)
        else:
            text = msg.recovered_text(view, window.status)
        payload = msg.control_message(
            state=decision.state,
            config=config,
            view=view,
            now=now,
            text=text,
            argument=argument if decision.state != RECOVERED else "",
            missing=names,
            sequence=alert.sequence,
        )
        key = f"batch-alert:{config.id}:{window.id}:{decision.state}:{alert.sequence}:{alert.transition}"
        messages.append(PendingMessage(msg.KIND, key, payload))
    return messages
