"""Formatting instants the way the API and the messages show them."""

from __future__ import annotations

import datetime as dt


def iso_utc(value: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, or None."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
