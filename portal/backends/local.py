"""The embedded backend: one JSON line per message, exactly the body SQS would receive."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.backends import SendResult
from portal.models import OutboundMessage, QueueHost

# A host whose publisher has not written for this long is gone: another host may take the file over.
HOST_SILENT_SECONDS = 300
# How often a publisher says it is still the one host (a row update, not one per batch).
HOST_REFRESH_SECONDS = 30
# How far back from the end of the file a publisher that takes a lane over from a dead one looks
# for the lines that one wrote: its batch, and what other lanes appended within a lease.
DELIVERED_SCAN_BYTES = 64 * 1024 * 1024


class LocalQueueTaken(RuntimeError):
    """A second host would write a control-queue.jsonl of its own, unnoticed: refused."""


def local_queue_claim(*, host: str | None = None) -> str:
    """Be the one host of the local backend, or learn which host is (DOMAIN §9).

    Reads the wall clock, never the portal's: a ``--now`` in 2030 must not lock the file for years.
    """
    host = host or socket.gethostname()
    now = timezone.now()
    with transaction.atomic():
        owner, created = QueueHost.objects.select_for_update().get_or_create(
            backend="local", defaults={"host": host, "seen_at": now}
        )
        if not created and owner.host != host and now - owner.seen_at < dt.timedelta(seconds=HOST_SILENT_SECONDS):
            raise LocalQueueTaken(
                f"the local queue backend is for one host: {owner.host} writes its own {Path(settings.CONTROL_QUEUE_FILE).name} "
                f"(last seen {owner.seen_at:%Y-%m-%d %H:%M:%S} UTC); several hosts need CONTROL_QUEUE_BACKEND=sqs"
            )
        QueueHost.objects.filter(id=owner.id).update(host=host, seen_at=now)
    return host


class LocalQueue:
    _claimed_at: float | None = None  # per process: when this host last said it owns the file

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or settings.CONTROL_QUEUE_FILE)

    def _still_the_one_host(self) -> None:
        if LocalQueue._claimed_at is None or time.monotonic() - LocalQueue._claimed_at > HOST_REFRESH_SECONDS:
            local_queue_claim()
            LocalQueue._claimed_at = time.monotonic()

    def delivered(self, messages: list[OutboundMessage]) -> set[int]:
        """Ids of the messages whose line is in the file already: a publisher killed between its
        write and its mark wrote them; the one that takes its lane over does not write them twice."""
        try:
            with open(self.path, "rb") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - DELIVERED_SCAN_BYTES))
                lines = set(handle.read().split(b"\n"))
        except FileNotFoundError:
            return set()
        return {message.id for message in messages if message.body.encode() in lines}

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        self._still_the_one_host()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(message.body + "\n" for message in messages).encode()
        with open(self.path, "ab+") as handle:
            # Several publishers may append at once: the lock keeps lines whole.
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                _drop_torn_line(handle)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return [SendResult(message.id, True) for message in messages]  # a line has no id but the message's uuid


def _drop_torn_line(handle) -> None:
    """A writer killed mid-write leaves a line without its end: cut it (its message was not marked
    SENT, so it is written again whole), else the next line would be glued to it."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    handle.seek(size - 1)
    if handle.read(1) == b"\n":
        return
    handle.seek(max(0, size - DELIVERED_SCAN_BYTES))
    tail = handle.read()
    handle.truncate(size - len(tail) + tail.rfind(b"\n") + 1)
