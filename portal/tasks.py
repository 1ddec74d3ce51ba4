"""django-q2 tasks of the portal: thin wrappers over services."""

from __future__ import annotations

from portal.publisher import outbox_publish_all


def publish_outbox() -> int:
    return outbox_publish_all().sent
