"""The web monitor in a real browser: Debian's Chromium driven by Playwright against a live server."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.services import job_add, job_comment, job_start
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WORKFLOW = "[10]\ntext=Initialize\ncommand=true\nnext=11\n[11]\ntext=Prepare\ncommand=true\n"
NINE_COLUMNS = ["ID", "Spoolname", "Generation", "State", "Attempt", "Type", "Status", "Timestamp", "Comment"]
# The page refreshes every second; the waits below are generous so a loaded machine cannot fail them.
SEEN = 5_000


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/monitor/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"pw-{username}")
    page.click("button[type=submit]")
    expect(page.locator("#jobs")).to_be_visible()


def job_row(page, job: Job):
    return page.locator(f'#jobs tr[data-job-id="{job.id}"]')


@pytest.fixture
def waiting_job(load_spool) -> Job:
    job = job_add(spool=load_spool(WORKFLOW), state=10, actor=TEST_ACTOR)
    return job_start(job=job, actor=TEST_ACTOR, named=False)


def test_operator_logs_in_sees_the_nine_columns_and_pauses_a_job_without_reload(page, live_server, operator, waiting_job):
    log_in(page, live_server, "operator")
    headers = page.locator("#jobs thead th").all_inner_texts()
    assert headers[:9] == NINE_COLUMNS
    row = job_row(page, waiting_job)
    expect(row.locator(".status")).to_have_text("Waiting", timeout=SEEN)
    page.evaluate("window.__notReloaded = true")

    row.locator('button[data-command="pause"]').click()

    expect(row.locator(".status")).to_have_text("Pause", timeout=SEEN)
    assert page.evaluate("window.__notReloaded") is True
    waiting_job.refresh_from_db()
    assert waiting_job.status == JobStatus.PAUSE
    artifacts = Path(settings.DATA_DIR) / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "monitor.png"), full_page=True)


def test_a_change_made_elsewhere_shows_without_reload(page, live_server, viewer, waiting_job):
    log_in(page, live_server, "viewer")
    row = job_row(page, waiting_job)
    expect(row.locator(".status")).to_have_text("Waiting", timeout=SEEN)
    page.evaluate("window.__notReloaded = true")

    job_comment(job=waiting_job, actor=TEST_ACTOR, comment="checked by night shift")

    expect(row.locator("td.comment")).to_have_text("checked by night shift", timeout=SEEN)
    assert page.evaluate("window.__notReloaded") is True


def test_viewer_sees_no_buttons_and_the_server_refuses_their_commands(page, live_server, viewer, waiting_job):
    log_in(page, live_server, "viewer")
    row = job_row(page, waiting_job)
    expect(row).to_be_visible(timeout=SEEN)
    assert page.locator("#jobs button").count() == 0
    assert page.locator("[data-scheduler]").count() == 0

    status = page.evaluate(
        """async (id) => {
            const token = document.cookie.match(/csrftoken=([^;]+)/)[1];
            const answer = await fetch(`/api/v1/jobs/${id}/pause/`, {method: "POST", credentials: "same-origin",
                headers: {"X-CSRFToken": token, "Content-Type": "application/json"}, body: "{}"});
            return answer.status;
        }""",
        waiting_job.id,
    )

    assert status == 403
    waiting_job.refresh_from_db()
    assert waiting_job.status == JobStatus.WAITING


def test_log_out_returns_to_the_login_form(page, live_server, viewer):
    log_in(page, live_server, "viewer")
    page.click("#logout")
    expect(page.locator("input[name=password]")).to_be_visible()
    page.goto(f"{live_server.url}/monitor/")
    expect(page.locator("input[name=password]")).to_be_visible()
    assert page.locator("#jobs").count() == 0
