"""The guard a step (or the worker cluster) runs under: one process group that dies as a whole.

Pure standard library, no Django. A step's guard is forked from its worker by ``fork_guarded``
(no interpreter to start); the worker cluster's is run as ``python -I -S stepguard.py --grace N
[--term main] -- argv`` by ``spawn_guarded``. Either way the guard is the leader of a session of its
own with a parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``). The guard starts ``argv`` in its own process group
and waits for it. On SIGTERM, SIGINT or SIGHUP — sent by the worker that stops the step, or by the kernel
when that worker dies, even by ``kill -9`` — it sends SIGTERM to the group (``--term main``: to the
command's main process only), waits the grace period, then SIGKILLs the whole group, itself included.
A second signal during the grace kills the group at once. So no process of a step outlives its worker,
and a step's grandchildren (a shell script's ``sleep``) die with it too.

The guard ends as its command did: the same exit code, or killed by the same signal. A program that
cannot be started is told as a shell would: 127 (not found) or 126 (not executable), and a line.
"""

from __future__ import annotations

import gc
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


class ForkedGuard:
    """A guard forked from this process (``fork_guarded``), seen as ``subprocess.Popen`` shows a child.

    ``stdout`` reads what the command writes (its stdout and stderr); ``returncode`` is the
    command's exit code, or minus the signal that killed it, once the guard has been waited for.
    """

    def __init__(self, pid: int, stdout) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: its code is lost
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            _wait_pid(self.pid, min(left, 3600.0))
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)


def _wait_pid(pid: int, timeout: float) -> None:
    """Until ``pid`` ends or ``timeout`` passes: woken by the exit (a pidfd), else a short sleep."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        time.sleep(min(timeout, 0.01))
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def fork_guarded(argv: list[str], *, grace: float, cwd: str, env: dict[str, str]) -> ForkedGuard:
    """Start ``argv`` under a guard forked from this process: a step's command, as the worker runs it.

    The same guard as ``spawn_guarded``'s (a session of its own, the parent-death signal, the
    group stopped as a whole) without starting an interpreter: a fork costs about a millisecond
    where a new Python costs tens, which is most of a short step's time. The forked guard only
    makes system calls, never touches what it inherited (database connections, broker sockets:
    their descriptors are closed at once, its collector is off) and leaves by ``os._exit``.
    The command's stdout and stderr are one pipe, read through ``stdout``.
    """
    parent = os.getpid()
    if sys.platform.startswith("linux"):
        _libc()
    read, write = os.pipe()
    # Blocked across the fork: a stop signal meant for the guard never runs this process's handlers there.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _forked_guard(argv, grace=grace, cwd=cwd, env=env, read=read, write=write, parent=parent)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(write)
    return ForkedGuard(pid, os.fdopen(read, "rb"))


def _forked_guard(argv: list[str], *, grace: float, cwd: str, env: dict[str, str], read: int, write: int, parent: int) -> None:
    code = 1
    try:
        gc.disable()  # no finalizer of an inherited object (a connection) may run here
        os.setsid()
        parent_death_signal(signal.SIGTERM, parent)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.closerange(3, _max_fd())
        for sig in signal.valid_signals():  # what the worker ignores (django-q2: SIGINT) the command does not
            if sig not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)
        code = guard(argv, grace=grace, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    except BaseException as exc:  # noqa: BLE001  - whatever happens, the guard leaves by _exit, never into the worker's code
        _say(f"stepguard: {exc!r}\n")
    finally:
        os._exit(code & 0xFF if code >= 0 else 128 - code)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536


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
    return guard(argv, grace=grace, term=term)


def _say(text: str) -> None:
    """A line on the guard's output, written straight to the descriptor (a forked guard has its parent's buffers)."""
    try:
        os.write(1, text.encode())
    except OSError:
        pass


def guard(argv: list[str], *, grace: float, term: str = "group", **popen) -> int:
    """Run ``argv`` in this process's group and wait for it, stopping the group on a stop signal.

    Called in the guard process, the leader of a session of its own (a script run by
    ``spawn_guarded``, or a child forked by ``fork_guarded``).
    """
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
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # a forked guard starts with the stop signals blocked
    try:
        child = subprocess.Popen(argv, restore_signals=True, **popen)
    except FileNotFoundError as exc:
        _say(f"cannot run {argv[0]!r}: {exc.strerror}\n")
        return NOT_FOUND
    except OSError as exc:
        _say(f"cannot run {argv[0]!r}: {exc.strerror}\n")
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
