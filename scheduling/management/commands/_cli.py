"""What the workflow job commands share: who the actor is, the clock, and times as operators type them."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import zoneinfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from portal import clock


def add_actor_arguments(parser) -> None:
    parser.add_argument(
        "--user", default=None, help="act as this portal user (their role is checked); default: the local account, cli:<login>"
    )
    parser.add_argument("--reason", default="", help="why, kept in the audit log")
    clock.add_now_argument(parser)


def cli_actor(username: str | None):
    """A named portal user, or the local account: whoever holds the shell may operate the portal."""
    if username is None:
        return f"cli:{getpass.getuser()}"
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"no active user {username!r}")
    return user


def cli_instant(text: str) -> dt.datetime:
    """An ISO-8601 time; without an offset it is read in PORTAL_TIME_ZONE, as the monitor shows times."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(settings.PORTAL_TIME_ZONE))
    return value.astimezone(dt.UTC)
