"""Two complete sets of the processes that notify (the clock and the publisher), on one PostgreSQL database:
each notification reaches the receiver once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from portal.alerts.models import AlertEpisode
from portal.alerts.services import alert_open

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(settings.BASE_DIR)
ALERTS = 12


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_two_clocks_and_two_publishers_send_each_notification_once(rule, receiver, tmp_path):
    rule(channel_names=("hook",), kinds=["JOB_ERROR"], repeat_minutes=10)
    for i in range(ALERTS):
        alert_open(kind="JOB_ERROR", subject=f"job:{i}", summary=f"job {i} is Error")
    # Opened eleven minutes ago: the first review of either clock owes each one repeat.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)
    AlertEpisode.objects.update(opened_at=past, review_at=past + dt.timedelta(minutes=10))

    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update(
        DEBUG="1", PORTAL_DATA_DIR=str(tmp_path), HEARTBEAT_SECONDS="1", OUTBOX_POLL_SECONDS="1",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    )
    connection.close()  # the processes work on the committed rows
    processes = [start(command, env) for command in (["run_heartbeat"], ["publish_outbox", "--loop"]) * 2]
    try:
        deadline = time.monotonic() + 90
        while len(receiver.posts()) < 2 * ALERTS and time.monotonic() < deadline:
            assert all(p.poll() is None for p in processes), "a process died"
            time.sleep(0.5)
        time.sleep(4)  # a few more ticks and turns of both sets: nothing more may come
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)

    told = Counter((p["subject"], p["event"]) for p in receiver.posts())
    assert told == Counter({(f"job:{i}", event): 1 for i in range(ALERTS) for event in ("opened", "repeated")})
