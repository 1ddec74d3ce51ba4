"""DOMAIN §4: the Procfile's processes, started one by one on a freshly migrated database, make a
complete working portal: web, django-q2 worker (with its schedules), heartbeat, dispatcher, publisher."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import free_port

ROOT = Path(settings.BASE_DIR)
EXPECTED_PROCESSES = {"web", "worker", "publisher", "clock", "dispatcher"}

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups"),
    # One run is enough, and it brings its own SQLite database: the PostgreSQL pass skips it.
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3", reason="runs once, on the SQLite pass"
    ),
]


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def wait_for(what: str, check: Callable[[], object], processes: dict[str, subprocess.Popen], seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} died: {process.args[-1]}"
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def query(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database, timeout=20) as db:
        return db.execute(sql).fetchall()


def test_procfile_processes_alone_make_a_working_portal(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    env.update(
        DEBUG="1",
        PORTAL_DATA_DIR=str(tmp_path),
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_WORKERS="1",
        Q_WORKERS="1",
        CONTROL_QUEUE_BACKEND="local",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=180)
    database = tmp_path / "portal.sqlite3"
    assert query(database, "SELECT COUNT(*) FROM django_q_schedule") == [(0,)]  # nothing but roles and interfaces yet

    entries = procfile()
    assert EXPECTED_PROCESSES <= set(entries)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in entries.items():
            with open(tmp_path / f"{name}.log", "w") as log:  # a pipe nobody reads would block it
                processes[name] = subprocess.Popen(
                    ["sh", "-c", command], cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
                )

        def health() -> dict | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    body = json.load(answer)
            except OSError:
                return None
            return body if body["last_heartbeat_at"] else None

        body = wait_for("the web server and the first heartbeat", health, processes)
        assert body["database"] is True and body["status"] == "ok"
        wait_for(
            "the worker's schedules",
            lambda: {name for (name,) in query(database, "SELECT name FROM django_q_schedule")} >= {"publish-outbox", "heartbeat"},
            processes,
        )

        workflow = tmp_path / "two-steps.ini"
        workflow.write_text("[1]\ntext=First\ncommand=true\nnext=2\n[2]\ntext=Second\ncommand=true\n")
        for arguments in (["load_workflow", "smoke", str(workflow)], ["jobs", "add", "smoke", "1"], ["jobs", "start", "smoke"]):
            subprocess.run([*manage, *arguments], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True)
        wait_for(
            "the job to run both steps through the dispatcher and the worker",
            lambda: query(database, "SELECT status, state FROM scheduling_job") == [("OK", 2)],
            processes,
        )

        enqueue = (
            "from portal.services import outbox_enqueue; from tests.portal.payloads import control_message; "
            "outbox_enqueue(kind='control_message', dedupe_key='procfile', payload=control_message())"
        )
        subprocess.run([*manage, "shell", "-c", enqueue], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True)
        queue_file = tmp_path / "control-queue.jsonl"
        wait_for("the publisher to send the message", lambda: queue_file.exists() and queue_file.read_text().strip(), processes)
        assert json.loads(queue_file.read_text().splitlines()[0])["eventMajor"] == "BATCHING"
    finally:
        killed = stop_groups(processes)
    assert killed == [], "these did not stop on SIGTERM to their process group (as honcho and Ctrl-C send it)"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_groups(processes: dict[str, subprocess.Popen], grace: float = 15) -> list[str]:
    """As honcho does: SIGTERM to each process group we started, SIGKILL to what is left after a grace.

    The whole group, not only the shell: django-q2's cluster and the gunicorn workers are its children.
    """
    for process in processes.values():
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for process in processes.values():
            process.poll()  # reap the shell, or its zombie keeps the group alive
        if not any(group_alive(p.pid) for p in processes.values()):
            break
        time.sleep(0.1)
    killed = []
    for name, process in processes.items():
        if group_alive(process.pid):
            killed.append(name)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    return killed
