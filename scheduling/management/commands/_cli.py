"""What the workflow job commands share: who the actor is."""

from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def add_actor_arguments(parser) -> None:
    parser.add_argument(
        "--user", default=None, help="act as this portal user (their role is checked); default: the local account, cli:<login>"
    )
    parser.add_argument("--reason", default="", help="why, kept in the audit log")


def cli_actor(username: str | None):
    """A named portal user, or the local account: whoever holds the shell may operate the portal."""
    if username is None:
        return f"cli:{getpass.getuser()}"
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"no active user {username!r}")
    return user
