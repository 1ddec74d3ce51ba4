"""Long-running loops that stop cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
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


def run_shielded(argv: list[str]) -> int:
    """Run ``argv`` in its own session; SIGTERM or SIGINT sent to us reaches only its main process.

    django-q2's cluster stops cleanly (running tasks finish) when its main process
    alone is signalled. A signal to the whole process group, as honcho, a terminal's
    Ctrl-C or systemd send it, also reaches the cluster's workers, and the cluster
    then hangs until it is killed, cutting running jobs short.
    """
    child = subprocess.Popen(argv, start_new_session=True)

    def forward(signum, frame) -> None:
        child.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    return child.wait()
