"""Run one step's command: no shell, a time limit, the output's tail kept, one process group.

Pure code, no Django. The command is started by this worker's step guard server
(``stepguard.start_step``, DOMAIN §5): a session and process group of its own that gets
SIGTERM, then SIGKILL after the grace, when this process stops it or dies, so no process
of a step outlives its worker. The caller passes ``still_ours``, asked every few seconds while the command
runs (the worker renews its lease on the job there): True, it is; None, it cannot
tell (the database is away: the command goes on and it is asked again soon); False,
the job was taken from this worker (declared Zombie, reset), so the command is stopped
rather than left to race a new attempt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from portal.lib.stepguard import NOT_EXECUTABLE, ServedStep, start_step

# How long a stopped command gets between SIGTERM and SIGKILL (the worker passes STEP_KILL_GRACE_SECONDS).
KILL_GRACE_SECONDS = 10.0
# Asked again this soon when ``still_ours`` could not tell.
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class CommandResult:
    return_code: int
    output_tail: str
    timed_out: bool = False
    abandoned: bool = False


class _Tail:
    """Reads a pipe to its end in a thread, keeping only the last characters."""

    def __init__(self, stream, chars: int) -> None:
        self.stream = stream
        self.limit = max(chars, 1) * 4  # bytes: a character is at most four in UTF-8
        self.buffer = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.buffer += chunk
            if len(self.buffer) > 2 * self.limit:
                del self.buffer[: -self.limit]

    def text(self, chars: int) -> str:
        # A background child may hold the pipe open after the command exits; do not wait for it forever.
        self.thread.join(timeout=2)
        return bytes(self.buffer[-self.limit :]).decode("utf-8", errors="replace")[-chars:]


def _stop(process: ServedStep, grace: float) -> None:
    """Stop the command's whole process group: its guard sends SIGTERM, then SIGKILL after ``grace``.

    The guard is asked, so every process of the step gets one SIGTERM; should the guard not
    end the group in time, SIGKILL goes to the group from here.
    """
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=grace + 5)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_command(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    time_limit: float,
    tail_chars: int,
    still_ours: Callable[[], bool | None],
    check_every: float,
    kill_grace: float = KILL_GRACE_SECONDS,
) -> CommandResult:
    try:
        process = start_step(argv, grace=kill_grace, cwd=cwd, env=env)
    except OSError as exc:  # no process or descriptor left for the guard
        return CommandResult(NOT_EXECUTABLE, f"cannot run {argv[0]!r}: {exc.strerror}\n")
    tail = _Tail(process.stdout, tail_chars)
    deadline = time.monotonic() + time_limit
    note, timed_out, abandoned = "", False, False
    try:
        next_check = time.monotonic() + check_every
        while True:
            now = time.monotonic()
            if process.exited_within(max(min(deadline, next_check) - now, 0.001)) is not None:
                break
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                note = f"\n[portal] time limit of {time_limit:g} s exceeded: command stopped\n"
                _stop(process, kill_grace)
                break
            if now >= next_check:
                ours = still_ours()
                next_check = time.monotonic() + (check_every if ours is not None else min(check_every, RETRY_SECONDS))
                if ours is False:
                    abandoned = True
                    note = "\n[portal] the job was taken from this worker: command stopped\n"
                    _stop(process, kill_grace)
                    break
    finally:
        if process.poll() is None:  # interrupted (the worker itself is being stopped)
            _stop(process, kill_grace)
    output = tail.text(tail_chars) + note
    return CommandResult(process.returncode, output[-tail_chars:], timed_out=timed_out, abandoned=abandoned)
