"""Control-queue backends, looked up by name in ``settings.CONTROL_QUEUE_BACKENDS``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from portal.models import OutboundMessage


@dataclass(frozen=True)
class SendResult:
    message_id: int
    ok: bool
    queue_message_id: str = ""
    error: str = ""
    permanent: bool = False  # the queue refused this message itself: retrying cannot help
    untried: bool = False  # never handed to the queue: released as it was, no attempt counted


class QueueBackend(Protocol):
    def send(self, messages: list[OutboundMessage]) -> list[SendResult]: ...


def backend_name_for(kind: str) -> str:
    """The backend a message kind leaves through: the control queue, unless the kind has its own."""
    return settings.OUTBOX_BACKEND_BY_KIND.get(kind, settings.CONTROL_QUEUE_BACKEND)


def lane_for(kind: str, payload: dict) -> str:
    """The outbox lane a message waits in: its kind, or its kind and receiver (OUTBOX_LANE_FIELD_BY_KIND)."""
    field = settings.OUTBOX_LANE_FIELD_BY_KIND.get(kind)
    return f"{kind}:{payload.get(field)}" if field else kind


def get_backend(name: str | None = None) -> QueueBackend:
    name = name or settings.CONTROL_QUEUE_BACKEND
    try:
        path = settings.CONTROL_QUEUE_BACKENDS[name]
    except KeyError:
        raise LookupError(f"unknown control queue backend {name!r}") from None
    return import_string(path)()
