"""Long-running loops that stop cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import threading


class StopSignal:
    """Set by SIGTERM or SIGINT; loops wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.event = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle)

    def handle(self, signum, frame) -> None:
        self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when a stop was asked meanwhile."""
        return self.event.wait(seconds)
