"""The four roles of DOMAIN §4 and what each may do."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import F

VIEWER = "Viewer"
FEEDER = "Feeder"
OPERATOR = "Operator"
ADMINISTRATOR = "Administrator"
ALL_ROLES = (VIEWER, FEEDER, OPERATOR, ADMINISTRATOR)

# Who may read, who may act: an Administrator may do all an Operator may, and
# an Operator all a Viewer may. A Feeder only feeds.
READERS = (VIEWER, OPERATOR, ADMINISTRATOR)
FEEDERS = (FEEDER, OPERATOR, ADMINISTRATOR)
OPERATORS = (OPERATOR, ADMINISTRATOR)
ADMINISTRATORS = (ADMINISTRATOR,)


def user_roles(user) -> set[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return set(ALL_ROLES)
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._portal_roles = cached
    return cached


def account_with_roles(**lookup):
    """The account matching ``lookup`` with its roles read in the same query (one row per group),
    or None: the API authenticates every request, and a second query for the roles doubled its cost."""
    rows = list(get_user_model().objects.filter(**lookup).annotate(portal_role=F("groups__name")))
    if not rows:
        return None
    user = rows[0]
    user._portal_roles = {row.portal_role for row in rows if row.portal_role}
    return user


def has_role(user, allowed: tuple[str, ...]) -> bool:
    return bool(user_roles(user) & set(allowed))


def can_read(user) -> bool:
    return has_role(user, READERS)


def can_feed(user) -> bool:
    return has_role(user, FEEDERS)


def can_operate(user) -> bool:
    return has_role(user, OPERATORS)


def can_administer(user) -> bool:
    return has_role(user, ADMINISTRATORS)


def require(actor, allowed: tuple[str, ...], what: str) -> None:
    """The one role gate of every service: a person must hold one of the roles.

    A string actor is a trusted local process (a management command, a tick, the demo loader);
    anything else, an anonymous user included, must hold the role.
    """
    if isinstance(actor, str):
        return
    if not has_role(actor, allowed):
        raise PermissionDenied(f"{what} needs the {allowed[0]} role")


def actor_label(actor) -> str:
    """How the audit log, a transition or a window names who acted: the username, the process, or "system"."""
    if getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return actor if isinstance(actor, str) and actor else "system"


def acting_user(actor):
    """The user row an audit entry or a transition links to: None for a process."""
    return actor if getattr(actor, "is_authenticated", False) else None
