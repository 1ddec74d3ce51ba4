"""Every benchmark under bench/ runs at its small size and prints its figures (their values are not judged here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
# The scripts (bench/ also holds modules they import, which have no main).
SCRIPTS = sorted(path.name for path in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__":' in path.read_text())
# A figure: a number with its unit, a ratio, or a table row of a figure, its floor and their ratio.
FIGURE = re.compile(r"\d[\d,]*(\.\d+)?\s*(ms|s|µs|x|%|[a-z]+/s)\b|ratio[^\n]*\d|\b[\d,]+\s+[\d,]+\s+\d+\.\d+\b")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def server_url(name: str) -> str:
    """A database of its own on the test run's PostgreSQL server, made afresh (benchmarks empty theirs)."""
    db = settings.DATABASES["default"]
    dsn = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"]}
    connection = psycopg2.connect(dbname="postgres", **dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    password = f":{dsn['password']}" if dsn["password"] else ""
    return f"postgres://{dsn['user']}{password}@{dsn['host']}:{dsn['port']}/{name}"


def test_every_benchmark_script_is_smoke_tested():
    assert {"arrivals.py", "heartbeat_tick.py", "monitor.py", "scan.py", "summary.py", "workflow.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_runs_at_its_small_size_and_prints_figures(script, tmp_path):
    url = server_url(f"smoke_{script.removesuffix('.py')}_bench")
    env = {**os.environ, "DATABASE_URL": url, "PORTAL_DATA_DIR": str(tmp_path), "DEBUG": "1", "LOG_LEVEL": "warning"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the benchmarks run with the portal's own settings, as documented
    command = [sys.executable, str(ROOT / "bench" / script), "--size", "small"]
    if script == "workflow.py":  # it starts the portal's processes on a database named on its command line
        command += ["--database-url", url]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    assert run.returncode == 0, f"{script} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    figures = [line for line in run.stdout.splitlines() if FIGURE.search(line)]
    assert figures, f"{script} printed no figure:\n{run.stdout[-3000:]}"
