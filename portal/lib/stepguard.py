"""The guard a step (or the worker cluster) runs under: one process group that dies as a whole.

Pure standard library, no Django. Two ways, one set of promises:

- ``spawn_guarded`` runs one command (the worker cluster) under ``python -I -S stepguard.py --grace N
  [--term main] -- argv``: the guard is the leader of a session of its own with a parent-death signal
  (Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``), starts ``argv`` in its own process group and waits for
  it. On SIGTERM, SIGINT or SIGHUP (sent by the process that stops it, or by the kernel when that
  process dies, even by ``kill -9``) it sends SIGTERM to the group (``--term main``: to the command's
  main process only), waits the grace period, then SIGKILLs the whole group, itself included. A
  second signal during the grace kills the group at once. The guard ends as its command did.
- ``start_step`` runs a step: every step of a worker thread is started by one guard server of that
  thread (``stepguard.py --serve``, started once with the same parent-death signal), so a step costs
  no interpreter and no fork of the worker: a few milliseconds less per step, which is most of a
  short step's cost. Each step is the leader of a session and group of its own; a stop sends it
  SIGTERM, then SIGKILL after the grace (a second stop: at once), and what it left in its group
  after a stop is killed when it ends; when the worker dies (the kernel's SIGTERM, or its socket
  closing) the server stops every step of it that way, then ends; a step's main process gets
  SIGKILL should the server itself be killed. Worker and server speak over Unix sequenced-packet
  sockets: a start request (JSON, with the step's output pipe and a socket of the step's own),
  then on the step's socket its process id, any stop asked, and its exit code.

So no process of a step outlives its worker, and a step's grandchildren (a shell script's
``sleep``) die with it too. A program that cannot be started is told as a shell would: 127 (not
found) or 126 (not executable), and a line.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

GUARD = os.path.abspath(__file__)
NOT_FOUND = 127
NOT_EXECUTABLE = 126
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
MESSAGE_MAX = 1 << 20  # a start request to the step server: the command line and its environment


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


# --- the worker's side -------------------------------------------------------------------------


class ServedStep:
    """A step started by the server, seen as ``subprocess.Popen`` shows a child.

    ``stdout`` reads what the command writes (stdout and stderr); ``returncode`` is its exit
    code, or minus the signal that ended it, once its end has been heard.
    """

    def __init__(self, channel: socket.socket, stdout, pid: int | None, returncode: int | None) -> None:
        self.channel = channel
        self.stdout = stdout
        self.pid = pid
        self.returncode = returncode

    def exited_within(self, timeout: float) -> int | None:
        """The exit code once the step ends within ``timeout`` seconds, else None."""
        if self.returncode is None and select.select([self.channel], [], [], max(timeout, 0))[0]:
            self._hear()
        return self.returncode

    def poll(self) -> int | None:
        return self.exited_within(0)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            self.exited_within(left)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """SIGTERM: stop the step's group with the grace; any other signal (SIGKILL): kill the group now."""
        if self.returncode is None:
            try:
                self.channel.send(json.dumps({"signal": int(sig)}).encode())
            except OSError:  # the server is gone, and the step with it
                self._hear()

    def _hear(self) -> None:
        try:
            message = self.channel.recv(MESSAGE_MAX)
        except OSError:
            message = b""
        # The server died without telling (never by the worker's doing): the step was killed with it.
        self.returncode = int(json.loads(message)["exit"]) if message else -signal.SIGKILL
        self.channel.close()


class _Server:
    """The server process of one worker thread and the socket to it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", GUARD, "--serve", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: parent_death_signal(signal.SIGTERM, parent),  # noqa: PLW0108
        )
        theirs.close()
        self.socket = ours

    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, request: dict, fds: list[int]) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self.socket, [json.dumps(request).encode()], [*fds, theirs.fileno()])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours


_SERVERS: dict[tuple[int, int], _Server] = {}
_SERVERS_LOCK = threading.Lock()


def _server() -> _Server:
    """This thread's server (the parent-death signal follows the thread that started it), started on first use."""
    key = (os.getpid(), threading.get_ident())
    with _SERVERS_LOCK:
        for other in [k for k, s in _SERVERS.items() if k[0] != key[0] or not s.alive()]:
            del _SERVERS[other]  # a forked copy's, or one that died: never reused
        if key not in _SERVERS:
            if sys.platform.startswith("linux"):
                _libc()  # loaded here, not between fork and exec
            _SERVERS[key] = _Server()
        return _SERVERS[key]


def start_step(argv: list[str], *, grace: float, cwd: str, env: dict[str, str]) -> ServedStep:
    """Start ``argv`` under this worker's guard server; its stdout and stderr are one pipe, read through ``stdout``.

    A server found ending (its thread gone, its id taken by a new thread) or dead is replaced once.
    """
    request = {"argv": argv, "cwd": cwd, "env": env, "grace": grace}
    for last in (False, True):
        read, write = os.pipe()
        try:
            channel = _server().start(request, [write])
            reply = channel.recv(MESSAGE_MAX)
        except OSError:
            channel, reply = None, b""
        finally:
            os.close(write)
        if reply:
            break
        os.close(read)
        if channel is not None:
            channel.close()
        _server_forget()
        if last:
            raise OSError("the step guard server could not start the step")
    stdout = os.fdopen(read, "rb")
    answer = json.loads(reply)
    if "exit" in answer:  # the command could not be started; its line is in the output
        channel.close()
        return ServedStep(channel, stdout, None, int(answer["exit"]))
    return ServedStep(channel, stdout, int(answer["pid"]), None)


def _server_forget() -> None:
    """This thread's server answered no more: the next step starts a new one (the old one ends by itself)."""
    with _SERVERS_LOCK:
        _SERVERS.pop((os.getpid(), threading.get_ident()), None)


# --- the server --------------------------------------------------------------------------------


class _Step:
    def __init__(self, process: subprocess.Popen, channel: socket.socket, grace: float) -> None:
        self.process = process
        self.channel = channel
        self.grace = grace
        self.stop_at: float | None = None
        self.let_go = False  # the worker closed its end: nothing more to hear on the channel
        self.pidfd = os.pidfd_open(process.pid) if hasattr(os, "pidfd_open") else None

    def stop(self, now: float) -> None:
        """The first stop: SIGTERM to the group, SIGKILL after the grace; a second: SIGKILL now."""
        if self.stop_at is not None:
            self.kill()
            return
        self.stop_at = now
        _signal_group(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        _signal_group(self.process.pid, signal.SIGKILL)

    def overdue(self, now: float) -> bool:
        return self.stop_at is not None and now - self.stop_at >= self.grace

    def end(self) -> None:
        """The command has ended: what it left in its group after a stop goes; the worker is told."""
        if self.stop_at is not None:
            self.kill()
        try:
            self.channel.send(json.dumps({"exit": self.process.returncode}).encode())
        except OSError:
            pass
        self.channel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _spawn(request: dict, out: int, channel: socket.socket, parent: int) -> _Step | None:
    argv = [str(a) for a in request["argv"]]
    try:
        process = subprocess.Popen(
            argv,
            cwd=request["cwd"],
            env=request["env"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            restore_signals=True,
            # the step's main process goes should this server die by a signal it cannot catch
            preexec_fn=lambda: parent_death_signal(signal.SIGKILL, parent),  # noqa: PLW0108
        )
    except OSError as exc:
        code = NOT_FOUND if isinstance(exc, FileNotFoundError) else NOT_EXECUTABLE
        try:
            os.write(out, f"cannot run {argv[0]!r}: {exc.strerror}\n".encode())
        except OSError:
            pass
        channel.send(json.dumps({"exit": code}).encode())
        channel.close()
        return None
    channel.send(json.dumps({"pid": process.pid}).encode())
    return _Step(process, channel, float(request.get("grace", 10)))


def serve(control: socket.socket) -> int:
    """Start the steps asked on ``control`` until the worker is gone, then stop every step still running."""
    ending: list[bool] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: ending.append(True))
    if sys.platform.startswith("linux"):
        _libc()  # loaded once here: each step's child only calls into it
    me = os.getpid()
    steps: dict[int, _Step] = {}
    while True:
        now = time.monotonic()
        if ending:
            for step in steps.values():
                if step.stop_at is None:
                    step.stop(now)
            if not steps:
                return 0
        for step in steps.values():
            if step.overdue(now):
                step.kill()
        waiting = [step.stop_at + step.grace - now for step in steps.values() if step.stop_at is not None]
        timeout = max(min(waiting, default=1.0), 0.01)
        watched = [] if ending else [control]
        watched += [step.channel for step in steps.values() if not step.let_go] + [step.pidfd for step in steps.values() if step.pidfd is not None]
        try:
            ready = set(select.select(watched, [], [], timeout if all(s.pidfd is not None for s in steps.values()) else 0.05)[0])
        except InterruptedError:
            continue
        if control in ready:
            _take_request(control, steps, me, ending)
        for pid, step in list(steps.items()):
            if step.channel in ready:
                _take_signal(step, time.monotonic())
            if step.process.poll() is not None:
                step.end()
                del steps[pid]


def _take_request(control: socket.socket, steps: dict[int, _Step], me: int, ending: list[bool]) -> None:
    try:
        message, fds, _flags, _address = socket.recv_fds(control, MESSAGE_MAX, 2)
    except OSError:
        message, fds = b"", []
    if not message:  # the worker is gone
        ending.append(True)
        for fd in fds:
            os.close(fd)
        return
    out, channel = fds[0], socket.socket(fileno=fds[1])
    try:
        step = _spawn(json.loads(message), out, channel, me)
    finally:
        os.close(out)
    if step is not None:
        steps[step.process.pid] = step


def _take_signal(step: _Step, now: float) -> None:
    try:
        message = step.channel.recv(MESSAGE_MAX)
    except OSError:
        message = b""
    if not message:  # the worker let the step go without waiting for it: stopped as if asked
        step.let_go = True
        step.stop(now)
        return
    if int(json.loads(message).get("signal", signal.SIGTERM)) == signal.SIGTERM:
        step.stop(now)
    else:
        step.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve(socket.socket(fileno=int(sys.argv[2]))))
    sys.exit(_main(sys.argv[1:]))
