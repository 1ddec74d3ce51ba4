"""django-q2 tasks of the portal: thin wrappers over services."""

from __future__ import annotations

from portal import clock
from portal.prune import retention_prune
from portal.publisher import outbox_publish_all


def publish_outbox() -> int:
    return outbox_publish_all().sent


def prune() -> dict[str, int]:
    """The daily retention run (DOMAIN §9)."""
    return retention_prune(now=clock.now())
