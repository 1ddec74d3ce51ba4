"""The one clock every piece of time logic reads.

Commands set it with ``--now``; tests set it with ``clock.frozen``. Nothing in
the portal calls ``timezone.now()`` or ``datetime.now()`` for its rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo
from collections.abc import Iterator

from django.conf import settings
from django.utils import timezone

_fixed: dt.datetime | None = None


def now() -> dt.datetime:
    """The current instant, timezone-aware, in UTC."""
    if _fixed is not None:
        return _fixed
    return timezone.now()


def zone() -> zoneinfo.ZoneInfo:
    """PORTAL_TIME_ZONE: where the gates read the time of day and every screen shows times."""
    return zoneinfo.ZoneInfo(settings.PORTAL_TIME_ZONE)


def local(instant: dt.datetime | None = None) -> dt.datetime:
    """An instant (default: now) in PORTAL_TIME_ZONE."""
    return (instant or now()).astimezone(zone())


def set_now(instant: dt.datetime | None) -> None:
    """Fix the clock at ``instant`` (None: follow real time again)."""
    global _fixed
    if instant is not None and timezone.is_naive(instant):
        raise ValueError("the clock needs a timezone-aware instant")
    _fixed = instant.astimezone(dt.UTC) if instant is not None else None


def advance(delta: dt.timedelta) -> dt.datetime:
    """Move a fixed clock forward (tests and replays)."""
    set_now(now() + delta)
    return now()


@contextlib.contextmanager
def frozen(instant: dt.datetime) -> Iterator[dt.datetime]:
    previous = _fixed
    set_now(instant)
    try:
        yield instant
    finally:
        set_now(previous)


# PostgreSQL's limit (and far beyond any real zone, +14:00 at most): a larger offset reaches no column.
MAX_OFFSET = dt.timedelta(hours=15, minutes=59)


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO-8601 instant that carries its offset; refuse naive ones and offsets beyond +-15:59."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text[:64]!r} is not an ISO-8601 date-time") from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone offset (add Z or +00:00)")
    if abs(value.utcoffset()) > MAX_OFFSET:
        raise ValueError(f"{text!r} has an offset beyond +-15:59")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00: no UTC instant exists
        raise ValueError(f"{text!r} is out of range") from None


def argparse_instant(text: str) -> dt.datetime:
    import argparse

    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_now_argument(parser) -> None:
    """Give a time-driven management command its ``--now ISO-8601`` option."""
    parser.add_argument(
        "--now", type=argparse_instant, default=None, help="run as if it were this instant (ISO-8601 with offset)"
    )


def apply_now_option(options: dict) -> None:
    if options.get("now") is not None:
        set_now(options["now"])
