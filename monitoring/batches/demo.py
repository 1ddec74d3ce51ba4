"""Demo data of the batch monitor (``make run`` only), relative to the clock.

Loaded once: configs of two tenants whose windows are fed through the arrivals service
at the times they would have arrived, so that the first scan finds an open batch, a
delayed one, a held arrival behind a late window, complete batches and an inactive
config that raises nothing. The BATCH_MONITOR task that scans them on the heartbeat is
created with the scheduler's demo data.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from monitoring.batches.models import BatchConfig
from monitoring.batches.scan import batch_scan
from monitoring.batches.services import arrivals_record, batch_config_create
from portal import clock

DEMO_TENANTS = ("acme", "globex")

# name, tenant, sources, window hours, max wait hours, re-alert minutes, target, interface, active
CONFIGS = [
    ("GL_DAILY", "acme", ["gl_lines", "gl_headers"], 24, 2, 60, ("ledger", "post_gl"), None, True),
    ("PAYMENTS_HOURLY", "acme", ["pay_in", "pay_out"], 1, 1, 30, ("payments", "settle"), "BATCH_PAYMENT_ORIGINATOR", True),
    ("LEGACY_EXPORT", "acme", ["legacy_dump"], 24, 1, None, ("archive", "load"), None, False),
    ("AR_DAILY", "globex", ["ar_invoices", "ar_receipts", "ar_credits"], 24, 12, 120, ("receivables", "match"), None, True),
    ("FX_RATES", "globex", ["fx_eod"], 24, 6, None, ("treasury", "revalue"), "LIQUIDITY_SERVICE", True),
    ("TREASURY_HOURLY", "globex", ["cash_positions", "sweeps"], 1, 1, 30, ("treasury", "sweep"), "LIQUIDITY_SERVICE", True),
]


def _feed(tenant: str, source: str, extract: dt.datetime, received: dt.datetime) -> None:
    with clock.frozen(received):
        arrivals_record(items=[{"tenant": tenant, "source": source, "extract_timestamp": extract.isoformat()}])


def _feed_windows(tenant: str, sources: list[str], first: dt.datetime, hours: int, complete: int) -> dt.datetime:
    """``complete`` full windows from ``first``; returns the start of the next one."""
    start = first
    for _ in range(complete):
        for i, source in enumerate(sources):
            extract = start + dt.timedelta(minutes=i)
            _feed(tenant, source, extract, extract + dt.timedelta(minutes=5))
        start += dt.timedelta(hours=hours)
    return start


def load_batch_demo() -> str:
    if BatchConfig.objects.filter(tenant__in=DEMO_TENANTS).exists():
        return "batch demo already loaded"
    now = clock.now().replace(minute=0, second=0, microsecond=0)
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    with transaction.atomic():
        for name, tenant, sources, window, wait, realert, (app, workflow), interface, active in CONFIGS:
            batch_config_create(
                actor="demo",
                fields={
                    "tenant": tenant, "name": name, "description": f"demo: {name.lower().replace('_', ' ')}",
                    "window_hours": window, "max_wait_hours": wait, "realert_minutes": realert, "target_app": app,
                    "target_workflow": workflow, "interface": interface, "active": active, "exception_check": True,
                },
                sources=sources,
            )
        # GL_DAILY: the last window ended 30 minutes ago without gl_headers -> OPEN, DELAYED in 90 minutes.
        late = _feed_windows("acme", ["gl_lines", "gl_headers"], now - 3 * day - dt.timedelta(minutes=30), 24, 2)
        _feed("acme", "gl_lines", late + hour, late + 2 * hour)
        # PAYMENTS_HOURLY: pay_out missing since 2 hours, SLA passed an hour ago -> DELAYED; pay_in came twice.
        late = _feed_windows("acme", ["pay_in", "pay_out"], now - 8 * hour, 1, 5)
        _feed("acme", "pay_in", late, late + hour)
        _feed("acme", "pay_in", late + dt.timedelta(minutes=20), late + dt.timedelta(minutes=70))
        # LEGACY_EXPORT (inactive): a window with nothing received after it, and no alert for it.
        _feed("acme", "legacy_dump", now - 2 * day, now - 2 * day + hour)
        # AR_DAILY: ar_credits missing in the window that ended 6 hours ago -> OPEN; a file of the
        # next window waits behind it (FUTURE_WINDOW, held).
        late = _feed_windows("globex", ["ar_invoices", "ar_receipts", "ar_credits"], now - 54 * hour, 24, 1)
        _feed("globex", "ar_invoices", late + hour, late + 2 * hour)
        _feed("globex", "ar_receipts", late + 2 * hour, late + 3 * hour)
        _feed("globex", "ar_invoices", now - 2 * hour, now - hour)
        # FX_RATES and TREASURY_HOURLY: complete, the next batch not due yet.
        _feed_windows("globex", ["fx_eod"], now - 3 * day + 4 * hour, 24, 3)
        _feed_windows("globex", ["cash_positions", "sweeps"], now - 6 * hour, 1, 6)
    return f"batch demo: {len(CONFIGS)} configs of tenants {', '.join(DEMO_TENANTS)}"


def scan_batch_demo() -> str:
    """The first scan at load (what the first heartbeat would do): the demo's OPEN and DELAYED batches alert at once."""
    return f"first scan: {batch_scan(now=clock.now())}"
