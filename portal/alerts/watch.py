"""Watching the watchers (DOMAIN §7): the heartbeat and the outbox seen from another process, and the ping out.

The dispatcher calls ``alerts_watch_heartbeat`` on its sweep, so a stopped clock is
noticed by a process that still runs; the clock calls ``alerts_on_tick`` (and the
dispatcher's own watch, which lives with the dispatcher's sign of life).
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.request

from django.conf import settings

from portal.alerts.models import AlertEpisode, AlertKind
from portal.alerts.services import NOTIFICATION, alert_follow, alerts_review
from portal.lib.times import iso_utc
from portal.models import Heartbeat, MessageStatus, OutboundMessage

log = logging.getLogger(__name__)

# Notifications wait on people's receivers, control messages on the queue: each stalls on its own.
OUTBOX_SUBJECTS = {"control-queue": False, "notifications": True}


def alerts_watch_heartbeat(*, now: dt.datetime) -> None:
    """HEARTBEAT_STALE while no tick came for three heartbeat intervals; resolved by the next tick."""
    beat = Heartbeat.objects.filter(id=Heartbeat.SINGLETON_ID).first()
    stale = bool(beat and beat.is_stale(now, settings.HEARTBEAT_SECONDS))
    summary = ""
    if stale:
        summary = (
            f"no heartbeat tick since {iso_utc(beat.last_tick_at)} ({dt.timedelta(seconds=round((now - beat.last_tick_at).total_seconds()))}): "
            "no scheduler task, batch scan or alert review runs; is the clock process up?"
        )
    alert_follow(kind=AlertKind.HEARTBEAT_STALE, subject="heartbeat", active=stale, summary=summary)


def _oldest_pending(notifications: bool) -> OutboundMessage | None:
    pending = OutboundMessage.objects.filter(status=MessageStatus.PENDING)
    pending = pending.filter(kind=NOTIFICATION) if notifications else pending.exclude(kind=NOTIFICATION)
    return pending.order_by("id").first()  # the first written, read from the pending index


def alerts_watch_outbox(*, now: dt.datetime) -> None:
    """OUTBOX_FAILED while any message is FAILED; OUTBOX_STALLED while the oldest pending one is OUTBOX_STALL_SECONDS old.

    Every message is due at once when written, so a pending message that old means
    the queue (or a receiver) has failed at least that long.
    """
    failed = OutboundMessage.objects.filter(status=MessageStatus.FAILED)
    count = failed.count()
    summary = ""
    if count:
        newest = failed.order_by("-id").first()
        summary = f"{count} outbox message(s) FAILED and will not be sent again unless published again; newest {newest.kind} {newest.dedupe_key}: {newest.last_error[:300]}"
    alert_follow(kind=AlertKind.OUTBOX_FAILED, subject="outbox", active=bool(count), summary=summary)
    limit = dt.timedelta(seconds=settings.OUTBOX_STALL_SECONDS)
    for subject, notifications in OUTBOX_SUBJECTS.items():
        oldest = _oldest_pending(notifications)
        stalled = oldest is not None and now - oldest.created_at >= limit
        summary = ""
        if stalled:
            age = dt.timedelta(seconds=round((now - oldest.created_at).total_seconds()))
            error = f"; last error: {oldest.last_error[:300]}" if oldest.last_error else ""
            summary = f"{subject}: the oldest pending message ({oldest.kind} {oldest.dedupe_key}) waits since {age}, {oldest.attempts} attempt(s){error}"
        alert_follow(kind=AlertKind.OUTBOX_STALLED, subject=subject, active=stalled, summary=summary)


def alerts_watch_outbox_after_publish(*, now: dt.datetime, troubled: bool) -> None:
    """After a publisher's turn: look again when it failed, or when an outbox alert may now end."""
    if troubled or AlertEpisode.objects.unresolved().filter(kind__in=[AlertKind.OUTBOX_FAILED, AlertKind.OUTBOX_STALLED]).exists():
        alerts_watch_outbox(now=now)


def alerts_on_tick(*, now: dt.datetime) -> int:
    """The clock's part of §7 on every tick: the heartbeat is back, the outbox, then repeats and escalations."""
    alerts_watch_heartbeat(now=now)
    alerts_watch_outbox(now=now)
    return alerts_review(now=now)


def heartbeat_ping() -> None:
    """A GET of HEARTBEAT_PING_URL (a dead man's switch outside the portal); a failure is logged, never raised."""
    url = settings.HEARTBEAT_PING_URL
    if not url:
        return
    try:
        with urllib.request.urlopen(url, timeout=settings.HEARTBEAT_PING_TIMEOUT_SECONDS) as answer:
            answer.read(1024)
    except Exception as exc:  # noqa: BLE001  - the ping must never stop a tick
        log.warning("heartbeat: ping of HEARTBEAT_PING_URL failed: %s", exc)
