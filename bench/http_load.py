"""Serving the portal as the Procfile's web process does, and posting to it from a few threads.

``web_process`` starts the Procfile's ``web:`` command (gunicorn with gunicorn.conf.py) on a
free port, for the portal or for another WSGI module (a benchmark's floor); ``post_all`` posts
bodies from ``concurrency`` threads, one connection per request as gunicorn's sync workers
answer, and returns the seconds it took.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip().removeprefix("exec ")  # the shell below execs it
    raise SystemExit("no web: line in the Procfile")


@contextlib.contextmanager
def web_process(*, workers: int = 2, module: str = "portal.wsgi", ready_path: str = "/healthz", env: dict | None = None) -> Iterator[int]:
    """The Procfile's web process serving ``module``, on a port it yields once it answers, signing
    with this process's secret key (its tokens are good there)."""
    port = _free_port()
    command = _web_command().replace("portal.wsgi", module, 1)
    environment = {
        **os.environ, "WEB_BIND": f"127.0.0.1:{port}", "WEB_WORKERS": str(workers), "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "warning",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {}),
    }
    process = subprocess.Popen(
        ["sh", "-c", "exec " + command.replace("--access-logfile -", "")], cwd=ROOT, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", ready_path, headers={"Host": "localhost"})
                probe.getresponse().read()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the web process did not start: {shlex.quote(command)}")
            time.sleep(0.2)
        time.sleep(2)  # the other workers boot (the master listens before any of them)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json", "Host": "localhost", **headers})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def post_all(port: int, path: str, bodies: list[bytes], *, headers: dict, concurrency: int, expect: tuple = (200, 201)) -> float:
    """Post every body (each once, from ``concurrency`` threads); the seconds it took."""
    queue = iter(enumerate(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def run() -> None:
        while not failures:
            with lock:
                taken = next(queue, None)
            if taken is None:
                return
            code, content = post(port, path, taken[1], headers)
            if code not in expect:
                failures.append(f"{path} answered {code}: {content[:300]!r}")

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(failures[0])
    return time.perf_counter() - started
