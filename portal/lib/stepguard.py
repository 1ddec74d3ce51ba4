"""The guard a step (or the worker cluster) runs under: one process group that dies as a whole.

Pure standard library, no Django: it is run as ``python -I -S stepguard.py --grace N [--term main] -- argv``
by ``spawn_guarded`` below, which starts it as the leader of a session of its own with a parent-death
signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``). The guard starts ``argv`` in its own process group
and waits for it. On SIGTERM, SIGINT or SIGHUP — sent by the worker that stops the step, or by the kernel
when that worker dies, even by ``kill -9`` — it sends SIGTERM to the group (``--term main``: to the
command's main process only), waits the grace period, then SIGKILLs the whole group, itself included.
A second signal during the grace kills the group at once. So no process of a step outlives its worker,
and a step's grandchildren (a shell script's ``sleep``) die with it too.

The guard ends as its command did: the same exit code, or killed by the same signal. A program that
cannot be started is told as a shell would: 127 (not found) or 126 (not executable), and a line.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

GUARD = os.path.abspath(__file__)
NOT_FOUND = 127
NOT_EXECUTABLE = 126
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


_LIBC: list = []  # the C library, loaded once in the parent: a child between fork and exec only calls into it


def _libc():
    if not _LIBC:
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def parent_death_signal(sig: int, parent: int) -> None:
    """In a child between fork and exec: get ``sig`` when the parent dies (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), sig)


def wait_exit(process: subprocess.Popen, timeout: float) -> int | None:
    """The exit code once ``process`` ends within ``timeout`` seconds, else None.

    Woken by the exit itself (a pidfd, Linux 5.3+), not by ``Popen.wait``'s polling, which
    sleeps up to 50 ms between looks: a step of 1 ms would cost 50 ms twice (here and in the guard).
    """
    if process.poll() is not None:
        return process.returncode
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd here: the polling wait
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return process.poll()


def guarded_argv(argv: list[str], *, grace: float, term: str = "group") -> list[str]:
    """The command line that runs ``argv`` under the guard."""
    return [sys.executable, "-I", "-S", GUARD, "--grace", f"{grace:g}", "--term", term, "--", *argv]


def spawn_guarded(argv: list[str], *, grace: float, term: str = "group", **popen) -> subprocess.Popen:
    """Start ``argv`` under the guard: a session of its own, killed as a group when this process dies."""
    parent = os.getpid()
    if sys.platform.startswith("linux"):
        _libc()  # not imported and loaded again in every child
    return subprocess.Popen(
        guarded_argv(argv, grace=grace, term=term),
        start_new_session=True,
        preexec_fn=lambda: parent_death_signal(signal.SIGTERM, parent),  # noqa: PLW0108
        **popen,
    )


def _main(args: list[str]) -> int:
    grace, term = 10.0, "group"
    while args and args[0] != "--":
        option, value, args = args[0], args[1], args[2:]
        if option == "--grace":
            grace = float(value)
        elif option == "--term":
            term = value
    argv = args[1:]
    if not argv:
        print("stepguard: no command", file=sys.stderr)
        return 2
    stopping: list[float] = []  # monotonic time of the first stop signal
    parent = os.getppid()
    child: subprocess.Popen | None = None

    def signal_command() -> None:
        try:
            if term == "main":
                os.kill(child.pid, signal.SIGTERM)
            else:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's SIGTERM is not a second signal to the guard
                os.killpg(0, signal.SIGTERM)
                signal.signal(signal.SIGTERM, stop)
        except ProcessLookupError:
            pass

    def stop(signum, frame) -> None:
        if stopping:  # a second signal: no more grace
            _kill_group()
        stopping.append(time.monotonic())
        if child is not None:
            signal_command()

    # A handler (not SIG_IGN, which the command would inherit) from the start: a stop is never missed.
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    try:
        child = subprocess.Popen(argv, restore_signals=True)
    except FileNotFoundError as exc:
        print(f"cannot run {argv[0]!r}: {exc.strerror}", flush=True)
        return NOT_FOUND
    except OSError as exc:
        print(f"cannot run {argv[0]!r}: {exc.strerror}", flush=True)
        return NOT_EXECUTABLE
    if stopping:  # asked to stop while the command started
        signal_command()
    elif os.getppid() != parent:  # the worker died while the command started
        stop(signal.SIGTERM, None)
    while True:
        code = wait_exit(child, 0.2)
        if code is not None:
            break
        if stopping and time.monotonic() - stopping[0] >= grace:
            _kill_group()
    if stopping:
        # The command ended within the grace; what it left behind in the group goes now.
        _kill_others()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    return code


def _kill_group() -> None:
    sys.stdout.flush()
    os.killpg(0, signal.SIGKILL)


def _kill_others() -> None:
    """SIGKILL every process of the guard's group but the guard (read from /proc; elsewhere the whole group)."""
    if not os.path.isdir("/proc/self"):
        _kill_group()
        return
    me, group = os.getpid(), os.getpgid(0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == group:  # state, ppid, pgrp
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
