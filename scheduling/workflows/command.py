"""Run one step's command: no shell, a time limit, the output's tail kept.

Pure code, no Django. The caller passes ``still_ours``, asked every few seconds
while the command runs (the worker renews its lease on the job there); when it
answers False the job was taken from this worker (declared Zombie, reset), so
the command is stopped rather than left to race a new attempt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# What a shell would answer for a program it cannot find or cannot execute.
NOT_FOUND = 127
NOT_EXECUTABLE = 126
# How long a stopped command gets between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 5.0


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


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the command's whole process group, SIGKILL it after a grace period."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if grace is None:
            process.wait()
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    time_limit: float,
    tail_chars: int,
    still_ours: Callable[[], bool],
    check_every: float,
) -> CommandResult:
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a time limit stops its children too
        )
    except FileNotFoundError as exc:
        return CommandResult(NOT_FOUND, f"cannot run {argv[0]!r}: {exc.strerror}\n")
    except OSError as exc:
        return CommandResult(NOT_EXECUTABLE, f"cannot run {argv[0]!r}: {exc.strerror}\n")
    tail = _Tail(process.stdout, tail_chars)
    deadline = time.monotonic() + time_limit
    note, timed_out, abandoned = "", False, False
    try:
        next_check = time.monotonic() + check_every
        while True:
            now = time.monotonic()
            try:
                process.wait(timeout=max(min(deadline, next_check) - now, 0.001))
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                note = f"\n[portal] time limit of {time_limit:g} s exceeded: command stopped\n"
                _stop(process)
                break
            if now >= next_check:
                next_check = now + check_every
                if not still_ours():
                    abandoned = True
                    note = "\n[portal] the job was taken from this worker: command stopped\n"
                    _stop(process)
                    break
    finally:
        if process.poll() is None:  # interrupted (the worker itself is being stopped)
            _stop(process)
    output = tail.text(tail_chars) + note
    return CommandResult(process.returncode, output[-tail_chars:], timed_out=timed_out, abandoned=abandoned)
