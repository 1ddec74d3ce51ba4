"""Formatting instants the way the API and the messages show them."""

from __future__ import annotations

import datetime as dt


def iso_utc(value: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, or None."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# How every screen shows an instant (the console, the CLI, the admin): the year always, seconds,
# 24 hours, in PORTAL_TIME_ZONE, whose name the screen shows once beside them.
SHOWN_FORMAT = "%Y-%m-%d %H:%M:%S"


def shown(value: dt.datetime | None, zone: dt.tzinfo) -> str:
    """An instant as the screens show it, in ``zone``; "" for None."""
    return value.astimezone(zone).strftime(SHOWN_FORMAT) if value is not None else ""
