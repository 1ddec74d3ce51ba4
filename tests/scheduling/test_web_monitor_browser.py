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

    row.get_by_role("button", name="pause", exact=True).click()

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


# --- the console's promises (DOMAIN §6, issue 12) ----------------------------------------------------


def visible_without_scrolling(page, locator) -> bool:
    box = locator.bounding_box()
    viewport = page.viewport_size
    return (
        box is not None and page.evaluate("window.scrollY") == 0
        and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
        and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    )


def a_bad_morning(load_spool, operator=None) -> dict:
    """60 OK jobs, 3 in Error, a Zombie; the batch demo scanned (a DELAYED batch, a held arrival); a task in ERROR."""
    from monitoring.batches.demo import load_batch_demo
    from monitoring.batches.scan import batch_scan
    from portal import clock
    from scheduling.scheduler.models import SchedulerTask, TaskState
    from scheduling.scheduler.services import scheduler_task_create

    spool = load_spool(WORKFLOW)
    made = {}
    for status, count in ((JobStatus.ERROR, 3), (JobStatus.ZOMBIE, 1), (JobStatus.OK, 60)):
        for _ in range(count):
            job = job_add(spool=spool, state=10, actor=TEST_ACTOR)
            Job.objects.filter(id=job.id).update(status=status, output_tail=f"step output of job {job.id}\nexit 3\n")
            made.setdefault(status, []).append(job)
    load_batch_demo()
    batch_scan(now=clock.now())
    for name in ("summary-hosted", "summary-invoked", "batch-scan"):
        scheduler_task_create(actor="test", name=name, subtype="BATCH_MONITOR", interval_seconds=300)
    SchedulerTask.objects.filter(name="summary-invoked").update(state=TaskState.ERROR, last_error="the gateway answered 503", consecutive_failures=4)
    return made


def test_what_needs_an_eye_is_on_the_first_screen_at_1440x900(page, live_server, viewer, load_spool):
    made = a_bad_morning(load_spool)
    log_in(page, live_server, "viewer")
    problems = made[JobStatus.ERROR] + made[JobStatus.ZOMBIE]
    expect(page.locator(f'#attention tr[data-job-id="{problems[0].id}"]')).to_be_visible(timeout=SEEN)

    for job in problems:
        assert visible_without_scrolling(page, page.locator(f'#attention tr[data-job-id="{job.id}"]')), job
    assert visible_without_scrolling(page, page.locator("#batches tr", has_text="DELAYED"))
    assert visible_without_scrolling(page, page.locator("#tasks tr", has_text="ERROR"))
    assert visible_without_scrolling(page, page.locator("#counts .count-chip.status-Error"))
    expect(page.locator("#counts .status-Error .n")).to_have_text("3")
    expect(page.locator("#counts .status-OK .n")).to_have_text("60")


def test_pause_held_300_ms_at_random_moments_against_the_refresh_is_never_lost(page, live_server, operator, load_spool):
    import random

    spool = load_spool(WORKFLOW)
    jobs = [job_start(job=job_add(spool=spool, state=10, actor=TEST_ACTOR), actor=TEST_ACTOR, named=False) for _ in range(20)]
    log_in(page, live_server, "operator")
    expect(job_row(page, jobs[0]).locator(".status")).to_have_text("Waiting", timeout=SEEN)
    rng = random.Random(12)

    for job in jobs:
        pause = job_row(page, job).get_by_role("button", name="pause", exact=True)
        pause.evaluate("button => button.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(rng.randrange(0, 1000))  # anywhere in the one-second refresh
        box = pause.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.wait_for_timeout(300)
        page.mouse.up()

    expect(page.locator("#jobs .status-Pause")).to_have_count(20, timeout=SEEN)
    assert Job.objects.filter(id__in=[job.id for job in jobs], status=JobStatus.PAUSE).count() == 20
    assert page.locator(".message.bad").count() == 0


def test_an_operator_without_the_staff_flag_works_the_morning_from_the_console(page, live_server, operator, load_spool):
    import datetime as dt

    from monitoring.batches.models import BatchFile, BatchWindow, WindowStatus
    from portal import clock
    from portal.models import AuditEntry
    from scheduling.scheduler.models import SchedulerTask, TaskState

    assert not operator.is_staff
    made = a_bad_morning(load_spool)
    log_in(page, live_server, "operator")

    # fail the delayed window, with a reason
    delayed = page.locator("#batches tr", has_text="DELAYED")
    delayed.get_by_role("button", name="fail window").click()
    page.fill("#dialog-reason", "pay_out will not come today")
    page.get_by_role("button", name="Fail the window").click()
    expect(delayed).to_contain_text("window FAILED by operator", timeout=SEEN)
    window = BatchWindow.objects.get(config__name="PAYMENTS_HOURLY", status=WindowStatus.FAILED)
    assert (window.failed_by, window.fail_reason) == ("operator", "pay_out will not come today")

    # release the held arrival
    page.locator("#held tr", has_text="ar_invoices").get_by_role("button", name="release").click()
    page.fill("#dialog-reason", "ar_credits is lost; go on with the next day")
    page.get_by_role("button", name="Fail the blocking window and release").click()
    expect(page.locator("#held")).to_be_hidden(timeout=SEEN)
    assert not BatchFile.objects.filter(held=True).exists()

    # suspend a task until a time (the portal's zone is UTC here)
    resume = (clock.now() + dt.timedelta(hours=3)).replace(microsecond=0)
    task_row = page.locator("#tasks tr", has_text="batch-scan")
    task_row.get_by_role("button", name="suspend").click()
    page.fill("#dialog-time", resume.strftime("%Y-%m-%d %H:%M:%S"))
    page.fill("#dialog-reason", "the database is being moved")
    page.get_by_role("button", name="Suspend", exact=True).click()
    expect(task_row).to_contain_text(f"resumes {resume:%Y-%m-%d %H:%M:%S}", timeout=SEEN)
    task = SchedulerTask.objects.get(name="batch-scan")
    assert (task.state, task.resume_at, task.suspended_reason) == (TaskState.SUSPENDED, resume, "the database is being moved")

    # read a job's output, in the page and in the URL
    failed = made[JobStatus.ERROR][0]
    page.locator(f'#attention tr[data-job-id="{failed.id}"] td.id a').click()
    expect(page.locator("#detail-output")).to_have_text(f"step output of job {failed.id}\nexit 3\n", timeout=SEEN)
    assert f"job={failed.id}" in page.url
    assert {"batch_window.fail", "scheduler_task.suspend"} <= set(AuditEntry.objects.filter(actor_name="operator").values_list("action", flat=True))

    # and the admin opens through the role
    page.goto(f"{live_server.url}/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    assert "/admin/login/" not in page.url


def test_on_a_phone_nothing_scrolls_sideways_and_every_status_shows(chromium, live_server, operator, load_spool):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    made = a_bad_morning(load_spool)
    job_comment(job=made[JobStatus.ERROR][0], actor=TEST_ACTOR, comment="the bank resends the file at 06:30; " * 6)
    log_in(page, live_server, "operator")
    expect(page.locator(f'#attention tr[data-job-id="{made[JobStatus.ERROR][0].id}"]')).to_be_visible(timeout=SEEN)

    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for status in page.locator("#jobs tr[data-job-id] .status").all():
        box = status.bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= 390
    logout = page.locator("#logout")
    box = logout.bounding_box()
    assert box["x"] + box["width"] <= 390
    colours = logout.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
    assert colours[0] != colours[1]
    context.close()


@pytest.mark.slow
def test_screenshots_of_the_console_with_the_demo(chromium, live_server, operator, control_queue_file):
    """docs/console-1440.png and docs/console-390.png: `PORTAL_SCREENSHOTS=docs make test PYTEST_ARGS='-m slow -k screenshots'`."""
    import os

    from portal.publisher import outbox_publish_all
    from portal.services import demo_load
    from scheduling.scheduler.heartbeat import heartbeat_tick
    from scheduling.workflows.dispatcher import jobs_dispatch

    demo_load()
    # What the processes of `make run` do in their first seconds: a tick, the dispatcher (the payroll
    # import fails), the publisher.
    heartbeat_tick()
    while jobs_dispatch():
        pass
    outbox_publish_all()
    folder = Path(os.environ.get("PORTAL_SCREENSHOTS") or Path(settings.DATA_DIR) / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in ((1440, 900), (390, 844)):
        context = chromium.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        log_in(page, live_server, "operator")
        expect(page.locator("#attention .status-Error")).to_be_visible(timeout=SEEN)
        expect(page.locator("#batches tr", has_text="DELAYED")).to_be_visible(timeout=SEEN)
        page.wait_for_timeout(1500)  # the charts drawn
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(folder / f"console-{width}.png"))
        context.close()
