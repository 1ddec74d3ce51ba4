"""The embedded backend: one JSON line per message, exactly the body SQS would receive."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from django.conf import settings

from portal.backends import SendResult
from portal.models import OutboundMessage


class LocalQueue:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or settings.CONTROL_QUEUE_FILE)

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(message.body + "\n" for message in messages)
        with open(self.path, "a", encoding="utf-8") as handle:
            # Several publishers may append at once: the lock keeps lines whole.
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return [SendResult(message.id, True, str(message.uuid)) for message in messages]
