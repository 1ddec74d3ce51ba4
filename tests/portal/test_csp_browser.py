"""The Content-Security-Policy in a real browser: the console, the admin and the API docs work under it
with no violation (Chromium reports each one on the console)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_console_admin_and_api_docs_run_under_the_policy(page, live_server, administrator):
    administrator.is_staff = True
    administrator.save()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)

    page.goto(f"{live_server.url}/monitor/")
    page.fill("input[name=username]", "administrator")
    page.fill("input[name=password]", "pw-administrator")
    page.click("button[type=submit]")
    expect(page.locator("#jobs")).to_be_visible()
    expect(page.locator("#heartbeat")).not_to_have_text("–", timeout=10_000)  # monitor.js ran and refreshed

    page.goto(f"{live_server.url}/admin/")
    expect(page.locator("#site-name")).to_be_visible()

    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Batch operations portal API", timeout=20_000)
    expect(page.locator(".opblock").first).to_be_visible()

    assert violations == []


def test_the_api_docs_render_with_every_other_host_blocked(page, live_server, administrator):
    """The portal works with no internet: Swagger UI and its assets are vendored, so blocking every
    request to a host other than the portal's changes nothing."""
    portal = live_server.url
    elsewhere: list[str] = []

    def only_the_portal(route):
        if route.request.url.startswith(portal):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_portal)
    page.goto(f"{portal}/monitor/")
    page.fill("input[name=username]", "administrator")
    page.fill("input[name=password]", "pw-administrator")
    page.click("button[type=submit]")
    expect(page.locator("#heartbeat")).not_to_have_text("–", timeout=10_000)
    page.goto(f"{portal}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Batch operations portal API", timeout=20_000)
    expect(page.locator(".opblock").first).to_be_visible()
    assert elsewhere == []
