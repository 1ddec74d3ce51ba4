"""Configuration comes from the environment; a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "Q_SYNC", "DEBUG"}}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("HEARTBEAT_SECONDS", "often"),
        ("CONTROL_QUEUE_BACKEND", "kafka"),
        ("Q_BROKER", "rabbit"),
        ("PORTAL_TIME_ZONE", "Mars/Olympus"),
        ("DATABASE_URL", "mysql://nowhere"),
        ("CONTROL_QUEUE_URL", "not a url"),
    ],
)
def test_bad_environment_value_stops_start_up_naming_the_variable(variable, value, tmp_path):
    result = manage("check", **{"DEBUG": "1", "PORTAL_DATA_DIR": str(tmp_path), variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


def test_sqs_backend_without_a_queue_url_is_refused(tmp_path):
    result = manage("check", DEBUG="1", PORTAL_DATA_DIR=str(tmp_path), CONTROL_QUEUE_BACKEND="sqs")
    assert result.returncode != 0 and "CONTROL_QUEUE_URL" in result.stderr


def test_production_needs_a_secret_key(tmp_path):
    result = manage("check", DEBUG="0", PORTAL_DATA_DIR=str(tmp_path))
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_refuses_a_short_secret_key_naming_it(tmp_path):
    result = manage("check", DEBUG="0", PORTAL_DATA_DIR=str(tmp_path), SECRET_KEY="x" * 49, ALLOWED_HOSTS="portal.example.com")
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr and "50" in result.stderr
    assert "x" * 49 not in result.stderr  # the value itself is never printed


def test_check_deploy_with_production_like_variables_reports_no_errors(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "ERROR",
        DEBUG="0",
        SECRET_KEY="x" * 20 + "a-long-random-production-secret-key-0123456789",
        ALLOWED_HOSTS="portal.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        CONTROL_QUEUE_BACKEND="sqs",
        CONTROL_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/123456789012/control.fifo",
        AWS_REGION="eu-west-1",
        Q_BROKER="redis",
        REDIS_URL="redis://127.0.0.1:6379/0",
        PORTAL_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr


def test_a_short_secret_key_is_refused_in_production_without_repeating_it(tmp_path):
    result = manage("check", DEBUG="0", SECRET_KEY="hunter2-but-longer", PORTAL_DATA_DIR=str(tmp_path))
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr and "at least 50 random characters" in result.stderr
    assert "hunter2" not in result.stderr


def test_manage_py_reads_the_dev_checkouts_env_file_and_the_environment_wins(tmp_path):
    """`make run` writes .env (DEBUG=1) beside manage.py, so the CLI runs beside it with no variable exported."""
    import shutil

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "manage.py", checkout / "manage.py")

    def run(**env: str) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "SECRET_KEY", "Q_SYNC"}}
        clean.update(PYTHONPATH=str(ROOT), PORTAL_DATA_DIR=str(tmp_path / "var"), **env)
        return subprocess.run([sys.executable, "manage.py", "check"], cwd=checkout, env=clean, capture_output=True, text=True, timeout=120)

    refused = run()
    assert refused.returncode != 0 and "SECRET_KEY" in refused.stderr  # no .env: a deployment, refused as before

    (checkout / ".env").write_text("# written by make run\nDEBUG=1\n")
    assert run().returncode == 0, run().stderr
    assert run(DEBUG="0").returncode != 0  # the environment wins over the file
