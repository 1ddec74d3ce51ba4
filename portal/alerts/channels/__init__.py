"""Channel kinds (one module each, named in ``settings.NOTIFICATION_CHANNEL_KINDS``) and the outbox backend
that sends NOTIFICATION messages through them.

A kind's module offers ``check(target) -> list[str]`` (what is wrong with a target),
``shown(target) -> str`` (the target with its secrets masked) and
``send(channel, payload)``, which raises ``Undeliverable`` when trying again cannot
help and any other exception when it may.
"""

from __future__ import annotations

import importlib
import logging
import time
from types import ModuleType

from django.conf import settings

from portal.alerts.models import NotificationChannel
from portal.backends import SendResult
from portal.models import OutboundMessage

log = logging.getLogger(__name__)


class Undeliverable(Exception):
    """The receiver refused this notification itself: sending it again cannot help."""


def channel_kind(kind: str) -> ModuleType:
    try:
        return importlib.import_module(settings.NOTIFICATION_CHANNEL_KINDS[kind])
    except KeyError:
        raise LookupError(f"unknown channel kind {kind!r}") from None


def target_errors(kind: str, target: str) -> list[str]:
    return channel_kind(kind).check(target)


def target_shown(kind: str, target: str) -> str:
    """A target as the API, the admin and the audit log show it: secrets in it masked."""
    try:
        return channel_kind(kind).shown(target)
    except LookupError:
        return "***"


class NotificationSender:
    """The outbox backend of NOTIFICATION messages: each to its channel, in the order they were written.

    Each channel is a lane of the outbox (OUTBOX_LANE_FIELD_BY_KIND): a channel that fails
    holds its later notifications back (untried, so no attempt is counted) and its lane
    waits, so a receiver that was down gets them in order once it is back.
    """

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        channels = NotificationChannel.objects.in_bulk({m.payload.get("channel_id") for m in messages})
        held: set[int] = set()
        # Receivers answer one by one, each within its timeout: stop at half the lease, as the publisher does
        # between batches, so no other publisher takes these messages over while they are being sent.
        deadline = time.monotonic() + settings.OUTBOX_LEASE_SECONDS / 2
        results = []
        for message in sorted(messages, key=lambda m: m.id):
            channel_id = message.payload.get("channel_id")
            channel = channels.get(channel_id)
            if time.monotonic() > deadline:
                results.append(SendResult(message.id, False, untried=True))
                continue
            if channel is None or (not channel.enabled and message.payload.get("event") != "test"):
                why = "deleted" if channel is None else "disabled"
                log.warning("notification %s dropped: channel %s was %s since", message.dedupe_key, message.payload.get("channel"), why)
                results.append(SendResult(message.id, True, f"dropped: channel {why}"))
                continue
            if channel_id in held:
                results.append(SendResult(message.id, False, untried=True))
                continue
            try:
                channel_kind(channel.kind).send(channel, message.payload)
            except Undeliverable as exc:
                results.append(SendResult(message.id, False, error=f"{channel.name}: {exc}", permanent=True))
            except Exception as exc:  # noqa: BLE001  - any other failure of a receiver: try again later
                log.warning("notification %s to %s failed: %s", message.dedupe_key, channel.name, exc)
                results.append(SendResult(message.id, False, error=f"{channel.name}: {type(exc).__name__}: {exc}"))
                held.add(channel_id)
            else:
                results.append(SendResult(message.id, True, f"{channel.kind}:{channel.name}"))
        return results
