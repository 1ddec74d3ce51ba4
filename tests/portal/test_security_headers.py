"""Issue 14's settings a deployment lives with: a CSP the console, the admin and the API docs work
under, shorter sessions, a long SECRET_KEY, request ids and log lines that name them."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from django.conf import settings

from portal.logs import ContextFilter, JsonFormatter, log_scope

ROOT = Path(settings.BASE_DIR)
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/monitor/login/", "/admin/login/", "/api/docs/", "/api/docs/?script", "/monitor/", "/livez"])
def test_every_page_carries_the_content_security_policy(path, client, administrator):
    client.force_login(administrator)
    answer = client.get(path)
    assert answer.status_code in (200, 302), path
    policy = answer["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy


def test_the_api_docs_need_no_internet_and_no_inline_script(client, administrator):
    client.force_login(administrator)
    page = client.get("/api/docs/").content.decode()
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/") for source in sources), sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "an inline script would be blocked by the CSP"
    assert client.get("/api/docs/?script")["Content-Type"].startswith("application/javascript")


def test_no_template_of_ours_has_an_inline_script_or_event_handler():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template


def test_sessions_last_twelve_hours_by_default():
    assert settings.SESSION_COOKIE_AGE == 12 * 3600


def test_dot_env_is_never_committed():
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_an_answer_carries_its_request_id_and_keeps_a_sane_one_given(client):
    assert re.fullmatch(r"[0-9a-f]{16}", client.get("/livez")["X-Request-ID"])
    assert client.get("/livez", HTTP_X_REQUEST_ID="lb-1234.5")["X-Request-ID"] == "lb-1234.5"
    assert client.get("/livez", HTTP_X_REQUEST_ID="x" * 65)["X-Request-ID"] != "x" * 65


def test_json_log_lines_have_time_level_logger_and_the_job_or_request_id():
    record = logging.LogRecord("scheduling.workflows.worker", logging.WARNING, __file__, 1, "step %s failed", (20,), None)
    with log_scope(job=12, task=None):
        ContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "scheduling.workflows.worker"
    assert line["message"] == "step 20 failed" and line["job"] == 12 and "task" not in line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_the_text_log_format_names_time_level_logger_and_context():
    text_format = settings.LOGGING["formatters"]["text"]["format"]
    assert all(part in text_format for part in ("%(asctime)s", "%(levelname)s", "%(name)s", "%(context)s"))
