"""The heartbeat: `heartbeat --once`, the `clock` loop, the django-q2 schedule, HEARTBEAT_GAP."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from portal import clock
from portal.models import Heartbeat, OutboundMessage
from scheduling.scheduler.heartbeat import heartbeat_loop
from scheduling.scheduler.models import TaskState
from tests.scheduling.conftest import utc

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_heartbeat_once_runs_every_due_action_and_commits_before_returning(recorder, make_task, now, client, capsys):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    call_command("heartbeat", "--once", "--now", "2026-03-02T10:05:00Z")
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE and task.last_fired_at == utc("2026-03-02T10:05:00Z")
    assert len(recorder.calls) == 1
    assert "E_Heartbeat at 2026-03-02T10:05:00Z" in capsys.readouterr().out
    beat = Heartbeat.load()
    assert (beat.last_tick_at, beat.last_event) == (utc("2026-03-02T10:05:00Z"), "E_Heartbeat")
    assert client.get("/healthz").json()["last_heartbeat_at"] == "2026-03-02T10:05:00Z"


def test_heartbeat_without_once_points_to_the_loop():
    with pytest.raises(CommandError, match="run_heartbeat"):
        call_command("heartbeat")


def test_ticks_resuming_after_a_stale_period_send_one_heartbeat_gap_message(tick, settings):
    settings.HEARTBEAT_SECONDS = 60
    tick("2026-03-02T10:00:00Z")
    tick("2026-03-02T10:03:00Z")  # three intervals: late but not stale
    assert not OutboundMessage.objects.filter(kind="HEARTBEAT_GAP").exists()

    report = tick("2026-03-02T10:12:30Z")
    tick("2026-03-02T10:13:30Z")
    [gap] = OutboundMessage.objects.filter(kind="HEARTBEAT_GAP")
    assert gap.status == "PENDING", gap.last_error  # valid against its schema
    assert gap.dedupe_key == "HEARTBEAT_GAP:2026-03-02T10:03:00Z"
    assert gap.payload["heartbeat"] == {
        "last_tick_at": "2026-03-02T10:03:00Z",
        "resumed_at": "2026-03-02T10:12:30Z",
        "blind_seconds": 570,
        "interval_seconds": 60,
        "event": "E_Heartbeat",
    }
    assert "0:09:30" in gap.payload["eventMessage"]
    assert report.gap_seconds == 570


def test_a_replayed_tick_behind_the_last_one_does_not_move_the_heartbeat_back(tick):
    tick("2026-03-02T10:00:00Z")
    tick("2026-03-02T09:00:00Z")
    assert Heartbeat.load().last_tick_at == utc("2026-03-02T10:00:00Z")


class StopAfter:
    """A StopSignal stand-in: stops after ``ticks`` waits, moving the clock by each wait."""

    def __init__(self, ticks: int) -> None:
        self.waits: list[float] = []
        self.ticks = ticks

    @property
    def stopped(self) -> bool:
        return len(self.waits) >= self.ticks

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        clock.advance(dt.timedelta(seconds=60))
        return self.stopped


def test_the_loop_starts_with_heartbeat_start_and_hands_due_tasks_to_workers(recorder, make_task, now, settings):
    settings.HEARTBEAT_SECONDS = 60
    now("2026-03-02T10:00:00Z")
    make_task(interval_seconds=60)
    events = []
    stop = StopAfter(ticks=3)
    import scheduling.scheduler.heartbeat as services

    real_tick = services.heartbeat_tick

    def spy(**options):
        events.append(options["event"])
        assert options["inline"] is False
        return real_tick(**options)

    services.heartbeat_tick = spy
    try:
        heartbeat_loop(stop=stop)
    finally:
        services.heartbeat_tick = real_tick
    assert events == ["E_HeartbeatStart", "E_Heartbeat", "E_Heartbeat"]
    # Q_SYNC in the tests: django-q2 runs the handed-off task at once.
    assert [run.interval_end for run in recorder.calls] == [utc("2026-03-02T10:01:00Z"), utc("2026-03-02T10:02:00Z")]


def test_setup_schedules_declares_the_heartbeat_schedule_and_its_task_ticks(recorder, make_task, now, monkeypatch):
    from django_q.models import Schedule

    from scheduling.scheduler import tasks

    call_command("setup_schedules")
    call_command("setup_schedules")
    schedule = Schedule.objects.get(name="heartbeat")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("scheduling.scheduler.tasks.heartbeat", Schedule.MINUTES, 1)

    monkeypatch.setattr(tasks, "_started", False)  # a fresh worker process
    now("2026-03-02T10:00:00Z")
    make_task(interval_seconds=60)
    now("2026-03-02T10:01:00Z")
    assert tasks.heartbeat().startswith("E_HeartbeatStart at")
    assert len(recorder.calls) == 1
    now("2026-03-02T10:01:30Z")
    assert tasks.heartbeat().startswith("E_Heartbeat at")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_run_heartbeat_ticks_and_stops_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    env.update(DEBUG="1", PORTAL_DATA_DIR=str(tmp_path), HEARTBEAT_SECONDS="3600")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    process = subprocess.Popen([*manage, "run_heartbeat"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ticked = _wait_for_first_tick(tmp_path / "portal.sqlite3")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert ticked == "E_HeartbeatStart"


def _wait_for_first_tick(database: Path) -> str | None:
    import sqlite3

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            row = db.execute("SELECT last_event FROM portal_heartbeat WHERE last_tick_at IS NOT NULL").fetchone()
        if row:
            return row[0]
        time.sleep(0.1)  # waiting for another process, not moving the portal's time
    return None
