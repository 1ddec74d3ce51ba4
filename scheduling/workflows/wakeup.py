"""Wake-ups of the job path on PostgreSQL (LISTEN/NOTIFY): a job made due, an outcome written.

``jobs_wake`` sends a NOTIFY on ``portal_jobs`` inside the caller's transaction: PostgreSQL delivers
it at commit, and drops it on rollback. ``jobs_wait`` is the dispatcher's sleep between turns: it
returns at the first notification or after the poll interval, whichever comes first. Polling stays
the fallback (a lost connection, a notification sent while the dispatcher was busy) and the only
way on SQLite, where both are a plain sleep.
"""

from __future__ import annotations

import select
import time

from django.db import DatabaseError, connection

CHANNEL = "portal_jobs"


def wakeups_delivered() -> bool:
    """Whether ``jobs_wake`` reaches the dispatchers (PostgreSQL), or they can only poll (SQLite)."""
    return connection.vendor == "postgresql"


def jobs_wake() -> None:
    """Tell the listening dispatchers that a job may be due now (at commit; nothing on SQLite)."""
    if wakeups_delivered():
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


def jobs_wait(seconds: float) -> bool:
    """Sleep up to ``seconds``, or until a ``jobs_wake`` commits (PostgreSQL); True when woken."""
    if not wakeups_delivered() or connection.in_atomic_block:
        time.sleep(seconds)
        return False
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")  # once per session is enough; again is harmless and cheap
        raw = connection.connection
        raw.poll()
        if not raw.notifies:
            if select.select([raw], [], [], seconds)[0]:
                raw.poll()
        woken = bool(raw.notifies)
        raw.notifies.clear()
        return woken
    except (DatabaseError, OSError):
        time.sleep(seconds)  # the loop's next turn reports and reconnects
        return False
