"""The Prometheus rules file ships, passes `promtool check rules` and its unit tests, and names only real metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "portal-rules.yml"
RULE_TESTS = Path(__file__).with_name("prometheus") / "portal-rules.test.yml"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not IN_CI, reason="promtool is missing (apt-get install prometheus); CI installs it"
)


@needs_promtool
def test_promtool_checks_the_rules():
    done = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_the_rules_fire_as_their_unit_tests_expect():
    done = subprocess.run([PROMTOOL or "promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.django_db
def test_every_metric_the_rules_name_is_exported(client):
    text = client.get("/metrics/", REMOTE_ADDR="127.0.0.1").content.decode()
    exported = set(re.findall(r"^# TYPE (portal_\w+) (\w+)", text, re.M))
    names = {name for name, _ in exported}
    names |= {f"{name}_total" for name, kind in exported if kind == "counter"}
    names |= {f"{name}_bucket" for name, kind in exported if kind == "histogram"}
    named = set(re.findall(r"\b(portal_\w+)", RULES.read_text()))
    assert named and named <= names, sorted(named - names)
