"""The batch monitor's admin: configs with sources, windows, held arrivals, the actions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from monitoring.batches.models import BatchAlert, BatchConfig, BatchFile, BatchWindow
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


def staff(user: User) -> User:
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def gl(make_config, arrive, now):
    now("2026-03-03T00:30:00Z")
    config = make_config()
    arrive("gl_lines", "2026-03-02T00:00:00Z")
    arrive("gl_lines", "2026-03-03T05:00:00Z")  # held behind the open window
    return config


def test_administrator_adds_a_config_with_its_sources(administrator, client):
    client.force_login(staff(administrator))
    form = {
        "tenant": "acme", "name": "AP_DAILY", "description": "", "window_hours": "24", "max_wait_hours": "2",
        "target_app": "payables", "target_workflow": "post_ap", "active": "on", "exception_check": "on",
        "realert_minutes": "", "risk_tolerance_minutes": "10", "interface": "",
        "sources-TOTAL_FORMS": "2", "sources-INITIAL_FORMS": "0", "sources-MIN_NUM_FORMS": "0", "sources-MAX_NUM_FORMS": "1000",
        "sources-0-name": "ap_invoices", "sources-1-name": "ap_credits",
    }

    answer = client.post("/admin/monitoring/batchconfig/add/", form)

    assert answer.status_code == 302, answer.content.decode()[:2000]
    config = BatchConfig.objects.get(name="AP_DAILY")
    assert sorted(config.sources.values_list("name", flat=True)) == ["ap_credits", "ap_invoices"]
    # Saved by the service the API calls: the sources keep the order they were listed in.
    assert list(config.sources.order_by("position").values_list("name", "position")) == [("ap_invoices", 0), ("ap_credits", 1)]
    assert BatchAlert.objects.filter(config=config).exists()
    assert AuditEntry.objects.get(action="batch_config.create").after["sources"] == ["ap_credits", "ap_invoices"]


def test_admin_refuses_a_source_another_config_of_the_tenant_expects(gl, administrator, client):
    client.force_login(staff(administrator))
    form = {
        "tenant": "acme", "name": "OTHER", "window_hours": "24", "max_wait_hours": "2", "target_app": "x",
        "target_workflow": "y", "active": "on", "sources-TOTAL_FORMS": "1", "sources-INITIAL_FORMS": "0",
        "sources-MIN_NUM_FORMS": "0", "sources-MAX_NUM_FORMS": "1000", "sources-0-name": "gl_lines",
    }

    answer = client.post("/admin/monitoring/batchconfig/add/", form)

    assert answer.status_code == 200
    assert "already expected by config" in answer.content.decode()
    assert not BatchConfig.objects.filter(name="OTHER").exists()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/monitoring/batchconfig/",
        "/admin/monitoring/batchwindow/",
        "/admin/monitoring/batchwindow/?status=OPEN&alert_state=NONE",
        "/admin/monitoring/heldarrival/",
        "/admin/monitoring/batchfile/?exception=FUTURE_WINDOW",
    ],
)
def test_viewer_sees_the_batch_pages(gl, viewer, client, url):
    client.force_login(staff(viewer))
    answer = client.get(url)
    assert answer.status_code == 200


def test_window_list_shows_missing_sources(gl, viewer, client):
    client.force_login(staff(viewer))
    page = client.get("/admin/monitoring/batchwindow/").content.decode()
    assert "gl_headers" in page and "1/2" in page


def test_viewer_may_not_change_a_config_or_fail_a_window(gl, viewer, client):
    client.force_login(staff(viewer))
    window = BatchWindow.objects.get()

    client.post("/admin/monitoring/batchwindow/", {"action": "fail_windows", "_selected_action": [window.id], "reason": "x", "apply": "1"})
    client.post(f"/admin/monitoring/batchconfig/{gl.id}/change/", {"tenant": "acme", "name": "RENAMED"})

    assert BatchWindow.objects.get().status == "OPEN"
    assert BatchConfig.objects.get().name == "GL_DAILY"


def test_operator_fails_a_window_after_giving_a_reason(gl, operator, client):
    client.force_login(staff(operator))
    window = BatchWindow.objects.get()
    action = {"action": "fail_windows", "_selected_action": [window.id]}

    question = client.post("/admin/monitoring/batchwindow/", action)
    assert question.status_code == 200 and "Reason" in question.content.decode()
    assert BatchWindow.objects.get(id=window.id).status == "OPEN"

    client.post("/admin/monitoring/batchwindow/", {**action, "apply": "1", "reason": "upstream outage"})

    assert BatchWindow.objects.get(id=window.id).status == "FAILED"
    assert not BatchFile.objects.filter(held=True).exists()
    assert AuditEntry.objects.get(action="batch_window.fail").reason == "upstream outage"


def test_operator_releases_a_held_arrival(gl, operator, client):
    client.force_login(staff(operator))
    held = BatchFile.objects.get(held=True)

    client.post(
        "/admin/monitoring/heldarrival/",
        {"action": "release", "_selected_action": [held.id], "apply": "1", "reason": "day 1 lost"},
    )

    held.refresh_from_db()
    assert not held.held and held.window.status == "OPEN"


def test_scan_now_scans_the_selected_configs(gl, operator, client, messages, now):
    client.force_login(staff(operator))
    now("2026-03-02T23:00:00Z")
    from monitoring.batches.scan import batch_scan

    batch_scan(now=now("2026-03-02T23:00:00Z"))
    now("2026-03-03T01:00:00Z")

    client.post("/admin/monitoring/batchconfig/", {"action": "scan_now", "_selected_action": [gl.id]})

    assert [m["btch_dtl"]["state"] for m in messages("OPEN")] == ["OPEN"]
    assert AuditEntry.objects.get(action="batch_scan.now").actor_name == "operator"
