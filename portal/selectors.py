"""Reads that several surfaces share (healthz, and later the monitor and metrics)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef
from django.utils.module_loading import import_string

from portal import clock
from portal.lib.times import iso_utc
from portal.models import Heartbeat, OutboundMessage, OutboxLane


@dataclass(frozen=True)
class Health:
    """Readiness: the database, the heartbeat, the queue backend and each engine's READINESS_CHECKS."""

    database: bool
    last_heartbeat_at: dt.datetime | None
    heartbeat_stale: bool
    outbox_pending: int | None  # None: unknown (the database cannot be reached)
    outbox_oldest_pending_age_seconds: float | None
    outbox_failed: int | None
    queue_backend_failing: bool = False
    outbox_pending_capped: bool = False  # more than OUTBOX_PENDING_COUNT_CAP pending: outbox_pending is the cap
    engines_ready: bool = True
    engine_fields: dict = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        too_old = (self.outbox_oldest_pending_age_seconds or 0) > settings.HEALTHZ_OUTBOX_MAX_AGE_SECONDS
        return self.database and not self.heartbeat_stale and not too_old and not self.queue_backend_failing and self.engines_ready

    def as_json(self) -> dict:
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "database": self.database,
            "last_heartbeat_at": iso_utc(self.last_heartbeat_at),
            "heartbeat_stale": self.heartbeat_stale,
            "outbox_pending": self.outbox_pending,
            "outbox_pending_capped": self.outbox_pending_capped,
            "outbox_oldest_pending_age_seconds": self.outbox_oldest_pending_age_seconds,
            "outbox_failed": self.outbox_failed,
            "queue_backend_failing": self.queue_backend_failing,
            **self.engine_fields,
        }


def database_reachable() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001  - any failure means "not reachable"
        return False


def portal_health() -> Health:
    if not database_reachable():
        return Health(False, None, True, None, None, None)
    now = clock.now()
    heartbeat = Heartbeat.objects.filter(id=Heartbeat.SINGLETON_ID).first()
    oldest = oldest_pending_at()
    # Counted in the partial index, and no further than the cap: a deep backlog costs a probe no more.
    cap = settings.OUTBOX_PENDING_COUNT_CAP
    pending = OutboundMessage.objects.filter(id__in=OutboundMessage.objects.pending().values("id")[: cap + 1]).count()
    engines_ready, engine_fields = True, {}
    for path in settings.READINESS_CHECKS:
        ready, fields = import_string(path)(now)
        engines_ready, engine_fields = engines_ready and ready, {**engine_fields, **fields}
    return Health(
        database=True,
        last_heartbeat_at=heartbeat.last_tick_at if heartbeat else None,
        heartbeat_stale=bool(heartbeat and heartbeat.is_stale(now, settings.HEARTBEAT_SECONDS)),
        outbox_pending=min(pending, cap),
        outbox_pending_capped=pending > cap,
        outbox_oldest_pending_age_seconds=round((now - oldest).total_seconds(), 3) if oldest else None,
        outbox_failed=OutboundMessage.objects.filter(status="FAILED").count(),
        # A lane whose last batch failed: the backend is failing now (it clears at the next success).
        queue_backend_failing=OutboxLane.objects.filter(failures__gt=0).filter(Exists(OutboundMessage.objects.pending().filter(lane=OuterRef("name")))).exists(),
        engines_ready=engines_ready,
        engine_fields=engine_fields,
    )


def oldest_pending_at() -> dt.datetime | None:
    """When the oldest pending message was written: the first of the pending index, not a scan."""
    return OutboundMessage.objects.pending().order_by("id").values_list("created_at", flat=True).first()


def outbox_problems(*, limit: int = 10) -> dict:
    """What the monitor shows of the outbox: FAILED and INVALID counts and the newest failures."""
    counts = dict(
        OutboundMessage.objects.filter(status__in=["FAILED", "INVALID"]).values_list("status").annotate(n=Count("id")).order_by()
    )
    failed = OutboundMessage.objects.filter(status="FAILED").order_by("-id")[:limit]
    return {
        "failed_count": counts.get("FAILED", 0),
        "invalid_count": counts.get("INVALID", 0),
        "failed": [
            {"id": m.id, "kind": m.kind, "dedupe_key": m.dedupe_key, "attempts": m.attempts, "last_error": m.last_error}
            for m in failed
        ],
    }
