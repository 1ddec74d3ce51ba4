"""Summary events of the HOSTED/INVOKED_SERVICE_MONITOR scheduler tasks (DOMAIN §2).

For each interface of the task, over [run.interval_start, run.interval_end):
hosted interfaces get an FTMHostedServiceBeginSummary at the start of the
action and an FTMHostedServiceEndSummary with the figures; invoked interfaces
get one FTMInvokedServiceSummary with the figures. Every message goes through
the outbox in the caller's transaction (the scheduler's), with a dedupe key of
task, interface, interval end and event, and is kept as a ServiceSummary row;
a retried action finds both and adds nothing.

An interface of the other direction in the task (a hosted interface in an
INVOKED_SERVICE_MONITOR task, or the reverse) is skipped with a warning: its
summaries belong to a task of its own direction, and emitting the other kind
of event for it would mislead the consumers that route on the event name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid

from monitoring.summaries.models import (
    CurrencyTotals,
    Direction,
    MonitoredInterface,
    ServiceSummary,
    SummaryEvent,
    Transaction,
)
from portal import clock
from portal.lib.taskrun import TaskRun
from portal.lib.times import iso_utc
from portal.models import OutboundMessage
from portal.services import PendingMessage, outbox_enqueue_bulk

log = logging.getLogger(__name__)

DEDUPE_KEY_MAX = OutboundMessage._meta.get_field("dedupe_key").max_length


def summary_dedupe_key(*, task: str, interface: str, interval_end: dt.datetime, event: str) -> str:
    key = f"{event}:{task}:{interface}:{iso_utc(interval_end)}"
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    # A very long task name: keep the key unique and within the column.
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{event}:{digest}"


def summary_interfaces(*, run: TaskRun, direction: str) -> list[MonitoredInterface]:
    """The task's interfaces this action summarises: those of its own direction."""
    if not run.interface_codes:
        log.warning("task %s (%s) has no interface: nothing to summarise", run.task_name, run.subtype)
        return []
    interfaces = list(MonitoredInterface.objects.filter(code__in=run.interface_codes).order_by("code"))
    for missing in sorted(set(run.interface_codes) - {i.code for i in interfaces}):
        log.warning("task %s: interface %s does not exist, no summary for it", run.task_name, missing)
    matching = []
    for interface in interfaces:
        if interface.direction == direction:
            matching.append(interface)
        else:
            log.warning(
                "task %s (%s): interface %s is %s, skipped: a %s task summarises only %s interfaces",
                run.task_name, run.subtype, interface.code, interface.direction, run.subtype, direction,
            )
    return matching


def summaries_emit(*, run: TaskRun, direction: str) -> int:
    """The summary action of one task run: publish and keep each interface's events.

    Runs in the caller's transaction, so the outbox rows, the summary rows and
    the task's new state commit together. Returns how many events went out now
    (0 when a previous attempt already published them all).
    """
    interfaces = summary_interfaces(run=run, direction=direction)
    if not interfaces:
        return 0
    stored = ServiceSummary.objects.filter(task=run.task_name, interface__in=interfaces, interval_end=run.interval_end)
    done = set(stored.values_list("interface_id", "event"))
    events: list[tuple[MonitoredInterface, str, PendingMessage]] = []

    def emit(interface: MonitoredInterface, event: str, totals: list[CurrencyTotals]) -> None:
        if (interface.id, event) not in done:
            events.append((interface, event, _summary_message(run=run, interface=interface, event=event, totals=totals)))

    if direction == Direction.HOSTED:
        for interface in interfaces:
            emit(interface, SummaryEvent.HOSTED_BEGIN, [])
        figure_event = SummaryEvent.HOSTED_END
    else:
        figure_event = SummaryEvent.INVOKED
    pending = [interface for interface in interfaces if (interface.id, figure_event) not in done]
    figures = (
        Transaction.objects.filter(interface__in=pending).summary_figures(start=run.interval_start, end=run.interval_end)
        if pending
        else {}
    )
    for interface in pending:
        emit(interface, figure_event, figures.get(interface.id, []))
    if not events:
        return 0
    # One dedupe lookup and one INSERT for the run's events (per message, the outbox's
    # own checks cost more than the figures of a short interval).
    outbox_enqueue_bulk(messages=[message for _, _, message in events])
    # The rows copy the messages as they are in the outbox (an earlier attempt's, when
    # it got there first), so the admin shows exactly what the consumers received.
    outbox = OutboundMessage.objects.in_bulk([message.dedupe_key for _, _, message in events], field_name="dedupe_key")
    summaries = [
        _summary_row(run=run, interface=interface, event=event, message=outbox[message.dedupe_key])
        for interface, event, message in events
    ]
    # A concurrent run of the same interval stored the same rows: keep theirs.
    ServiceSummary.objects.bulk_create(summaries, ignore_conflicts=True)
    log.info("task %s: %d summary event(s) for [%s, %s)", run.task_name, len(summaries),
             iso_utc(run.interval_start), iso_utc(run.interval_end))
    return len(summaries)


def _summary_message(*, run: TaskRun, interface: MonitoredInterface, event: str, totals: list[CurrencyTotals]) -> PendingMessage:
    """One event for the outbox, with its dedupe key."""
    payload = {
        "event": str(event),
        "uuid": str(uuid.uuid4()),
        "task": run.task_name,
        "interface": interface.code,
        "direction": interface.direction,
        "interval_start": iso_utc(run.interval_start),
        "interval_end": iso_utc(run.interval_end),
        "emitted_at": iso_utc(clock.now()),
        "totals": [currency_totals.as_json() for currency_totals in totals],
    }
    key = summary_dedupe_key(task=run.task_name, interface=interface.code, interval_end=run.interval_end, event=event)
    return PendingMessage(str(event), key, payload)


def _summary_row(*, run: TaskRun, interface: MonitoredInterface, event: str, message: OutboundMessage) -> ServiceSummary:
    """The summary row to keep (not saved yet): the published message's figures and times."""
    published = message.payload
    return ServiceSummary(
        task=run.task_name,
        interface=interface,
        interval_end=run.interval_end,
        event=event,
        direction=published["direction"],
        interval_start=clock.parse_instant(published["interval_start"]),
        emitted_at=clock.parse_instant(published["emitted_at"]),
        totals=published["totals"],
        message=message,
    )
