"""Long-running loops that stop cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from portal.lib.stepguard import spawn_guarded


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


def run_shielded(argv: list[str], *, grace: float = 10.0) -> int:
    """Run ``argv`` (django-q2's cluster) so that a stop reaches only its main process, then ends it whole.

    django-q2's cluster stops cleanly (running tasks finish) when its main process alone is
    signalled; a signal to the whole process group, as honcho, a terminal's Ctrl-C or systemd
    send it, also reaches the cluster's workers and the cluster then hangs. So the cluster runs
    under ``stepguard`` in a session of its own: the first SIGTERM or SIGINT here goes to its main
    process, and the whole cluster (its steps with it: each dies with its worker) is killed
    ``grace`` seconds later if it has not stopped; a second signal kills it at once. Should this
    process die, even by SIGKILL, the cluster gets the same treatment (a parent-death signal).

    The cluster's output passes through this process instead of sharing its stdout: when a
    process manager kills this process, its output pipe closes at once, so the manager sees it
    stop (honcho otherwise goes on printing "sending SIGKILL" for as long as the cluster runs).
    """
    child = spawn_guarded(argv, grace=grace, term="main", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def relay() -> None:
        out = getattr(sys.stdout, "buffer", None)
        for chunk in iter(lambda: child.stdout.read1(65536), b""):
            try:
                if out is not None:
                    out.write(chunk)
                    out.flush()
            except (OSError, ValueError):
                pass

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()

    def forward(signum, frame) -> None:
        try:
            child.send_signal(signal.SIGTERM)  # the guard: the first to the cluster's main process, a second kills it
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    code = child.wait()
    relaying.join(timeout=2)
    return code


def exec_shielded(argv: list[str], *, grace: float, what: str, name: str) -> None:
    """Become a small process that runs ``argv`` as ``run_shielded`` does: this process's pid, output and signals.

    The process that set the cluster up (Django, its apps and their imports: some 90 MB) stays
    beside the cluster only to relay its output and signals, which the standard library does in
    about 10 MB: so it replaces itself (exec) with ``python -I -S`` running ``run_shielded``.
    The new process exits 0 when ``argv`` ended with 0 or was stopped (SIGTERM, or SIGKILL after
    the grace), else 1 with a line that names ``what`` and its exit code. ``name`` stands on its
    command line (`ps`, `pgrep -f`) before ``argv``. Open files are closed by the exec (Python
    opens them close-on-exec): close database connections before.
    """
    root = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {root!r}); from portal.lib.loop import shielded_exit_code; "
        f"sys.exit(shielded_exit_code(sys.argv[sys.argv.index('--') + 1:], grace={grace!r}, what={what!r}))"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", code, name, "--", *argv])


def shielded_exit_code(argv: list[str], *, grace: float, what: str) -> int:
    code = run_shielded(argv, grace=grace)
    if code in (0, -signal.SIGTERM, -signal.SIGKILL):
        return 0
    print(f"CommandError: {what} ended with {code}", file=sys.stderr, flush=True)
    return 1
