"""DOMAIN §4: every operator action and configuration change, through the API, is audited with
who, when, what, before, after and reason.

A "reason" in the JSON body (or ``?reason=`` on a DELETE) is kept, configuration changes
included. Each mutating route of the permission matrix (the feeds aside: arrivals and transactions are
data, not actions) is called once with a valid body; the test checks the audit row it leaves.
A mutating route missing from CALLS fails the test.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from portal.models import AuditEntry
from tests.portal.test_permission_matrix import FEED, MATRIX

pytestmark = pytest.mark.django_db

REASON = "ticket OPS-42"
WHEN = "2026-03-03T12:00:00Z"
FEEDS = {route for route, methods in MATRIX.items() if FEED in methods.values()}

CONFIG = {
    "tenant": "initech", "name": "TPS", "sources": ["tps_reports"], "window_hours": 24, "max_wait_hours": 2,
    "target_app": "reports", "target_workflow": "file", "exception_check": True, "active": True,
}


@pytest.fixture
def portal(now, administrator, operator, api_client_for):
    now("2026-03-02T09:00:00Z")
    call_command("load_demo", verbosity=0)
    now(WHEN)
    return {"admin": api_client_for(administrator), "operator": api_client_for(operator)}


def first_id(client, route: str, **filters) -> int:
    return client.get(route, filters).json()["results"][0]["id"]


def calls(portal) -> list[tuple[str, str, str, str, dict]]:
    """(who, method, route, url, body) in an order where each call is allowed."""
    admin = portal["admin"]
    config = first_id(admin, "/api/v1/batch-configs/", name="GL_DAILY")
    window = first_id(admin, "/api/v1/batch-windows/", status="OPEN")
    held = first_id(admin, "/api/v1/held-arrivals/")
    group = first_id(admin, "/api/v1/calendar-groups/", name="NYSE")
    interface = first_id(admin, "/api/v1/interfaces/", code="REPAIR_SERVICE")
    task = first_id(admin, "/api/v1/scheduler-tasks/", name="demo-batch-scan")
    spool = first_id(admin, "/api/v1/spools/", name="demo")
    job = first_id(admin, "/api/v1/jobs/", spool="demo")
    alert = first_id(admin, "/api/v1/alerts/", state="OPEN")
    channel = {"name": "ops-hook", "kind": "webhook", "target": "https://hooks.example/portal", "secret": "s3cret"}
    cutoff = {"name": "LIQUIDITY late", "interface": "LIQUIDITY_SERVICE", "currencies": ["EUR"], "time": "16:30", "calendar_group": "TARGET2"}
    return [
        ("admin", "POST", "/api/v1/batch-configs/", "/api/v1/batch-configs/", CONFIG),
        ("admin", "PATCH", "/api/v1/batch-configs/{id}/", f"/api/v1/batch-configs/{config}/", {"max_wait_hours": 5}),
        ("admin", "PUT", "/api/v1/batch-configs/{id}/", "new-config", {**CONFIG, "max_wait_hours": 3}),
        ("admin", "DELETE", "/api/v1/batch-configs/{id}/", "new-config", {}),
        ("operator", "POST", "/api/v1/batch-windows/{id}/fail/", f"/api/v1/batch-windows/{window}/fail/", {}),
        ("operator", "POST", "/api/v1/held-arrivals/{id}/release/", f"/api/v1/held-arrivals/{held}/release/", {}),
        ("admin", "POST", "/api/v1/calendar-groups/", "/api/v1/calendar-groups/", {"name": "LSE", "timezone": "Europe/London"}),
        ("admin", "PATCH", "/api/v1/calendar-groups/{id}/", f"/api/v1/calendar-groups/{group}/", {"weekend_days": [5, 6]}),
        ("admin", "PUT", "/api/v1/calendar-groups/{id}/", "new-group", {"name": "LSE", "timezone": "UTC"}),
        ("admin", "DELETE", "/api/v1/calendar-groups/{id}/", "new-group", {}),
        ("admin", "POST", "/api/v1/interfaces/", "/api/v1/interfaces/", {"code": "CARD_SWITCH", "name": "Cards", "direction": "INVOKED"}),
        ("admin", "PATCH", "/api/v1/interfaces/{id}/", f"/api/v1/interfaces/{interface}/", {"name": "Repairs"}),
        ("admin", "PUT", "/api/v1/interfaces/{id}/", "new-interface", {"code": "CARD_SWITCH", "name": "Card switch", "direction": "INVOKED"}),
        ("admin", "POST", "/api/v1/scheduler-tasks/", "/api/v1/scheduler-tasks/", {"name": "nightly-scan", "subtype": "BATCH_MONITOR", "interval_seconds": 300, "enabled": False}),
        ("admin", "PATCH", "/api/v1/scheduler-tasks/{id}/", "new-task", {"interval_seconds": 600}),
        ("admin", "PUT", "/api/v1/scheduler-tasks/{id}/", "new-task", {"name": "nightly-scan", "subtype": "BATCH_MONITOR", "interval_seconds": 900, "enabled": False}),
        ("admin", "DELETE", "/api/v1/scheduler-tasks/{id}/", "new-task", {}),
        ("operator", "POST", "/api/v1/scheduler-tasks/{id}/suspend/", f"/api/v1/scheduler-tasks/{task}/suspend/", {}),
        ("operator", "POST", "/api/v1/scheduler-tasks/{id}/resume/", f"/api/v1/scheduler-tasks/{task}/resume/", {}),
        ("operator", "POST", "/api/v1/scheduler-tasks/{id}/run-now/", f"/api/v1/scheduler-tasks/{task}/run-now/", {}),
        ("operator", "POST", "/api/v1/scheduler-tasks/{id}/disable/", f"/api/v1/scheduler-tasks/{task}/disable/", {}),
        ("operator", "POST", "/api/v1/scheduler-tasks/{id}/enable/", f"/api/v1/scheduler-tasks/{task}/enable/", {}),
        ("admin", "PATCH", "/api/v1/spools/{id}/", f"/api/v1/spools/{spool}/", {"enabled": False}),
        ("admin", "POST", "/api/v1/spools/{id}/reload/", f"/api/v1/spools/{spool}/reload/", {}),
        ("operator", "POST", "/api/v1/jobs/{id}/pause/", f"/api/v1/jobs/{job}/pause/", {}),
        ("operator", "POST", "/api/v1/jobs/{id}/schedule/", f"/api/v1/jobs/{job}/schedule/", {"timestamp": "2026-03-04T08:00:00Z"}),
        ("operator", "POST", "/api/v1/jobs/{id}/disable/", f"/api/v1/jobs/{job}/disable/", {}),
        ("operator", "POST", "/api/v1/jobs/{id}/enable/", f"/api/v1/jobs/{job}/enable/", {}),
        ("operator", "POST", "/api/v1/jobs/{id}/start/", f"/api/v1/jobs/{job}/start/", {}),
        ("operator", "POST", "/api/v1/spools/{id}/command/", f"/api/v1/spools/{spool}/command/", {"command": "pause"}),
        ("operator", "POST", "/api/v1/spools/{id}/command/", f"/api/v1/spools/{spool}/command/", {"command": "start"}),
        ("operator", "POST", "/api/v1/jobs/{id}/comment/", f"/api/v1/jobs/{job}/comment/", {"comment": "waits for the bank"}),
        ("operator", "POST", "/api/v1/jobs/", "/api/v1/jobs/", {"spool": "demo", "state": 10}),
        ("operator", "POST", "/api/v1/jobs/add/", "/api/v1/jobs/add/", {"spool": "demo", "state": 11}),
        ("operator", "POST", "/api/v1/jobs/{id}/reset/", "error-job", {}),
        ("admin", "POST", "/api/v1/scheduler/shutdown/", "/api/v1/scheduler/shutdown/", {}),
        ("admin", "POST", "/api/v1/scheduler/resume/", "/api/v1/scheduler/resume/", {}),
        ("admin", "POST", "/api/v1/scheduler/reload/", "/api/v1/scheduler/reload/", {}),
        ("operator", "POST", "/api/v1/alerts/{id}/acknowledge/", f"/api/v1/alerts/{alert}/acknowledge/", {}),
        ("admin", "POST", "/api/v1/notification-channels/", "/api/v1/notification-channels/", channel),
        ("admin", "PATCH", "/api/v1/notification-channels/{id}/", "new-channel", {"enabled": False}),
        ("admin", "PUT", "/api/v1/notification-channels/{id}/", "new-channel", {**channel, "target": "https://hooks.example/ops"}),
        ("admin", "POST", "/api/v1/notification-channels/{id}/test/", "new-channel", {}),
        ("admin", "POST", "/api/v1/alert-rules/", "/api/v1/alert-rules/", {"name": "ops", "channels": ["ops-hook"], "repeat_minutes": 30}),
        ("admin", "PATCH", "/api/v1/alert-rules/{id}/", "new-rule", {"repeat_minutes": 10}),
        ("admin", "PUT", "/api/v1/alert-rules/{id}/", "new-rule", {"name": "ops", "channels": ["ops-hook"], "kinds": ["JOB_ERROR"]}),
        ("admin", "DELETE", "/api/v1/alert-rules/{id}/", "new-rule", {}),
        ("admin", "DELETE", "/api/v1/notification-channels/{id}/", "new-channel", {}),
        ("admin", "POST", "/api/v1/cutoffs/", "/api/v1/cutoffs/", cutoff),
        ("admin", "PATCH", "/api/v1/cutoffs/{id}/", "new-cutoff", {"warn_minutes": 45}),
        ("admin", "PUT", "/api/v1/cutoffs/{id}/", "new-cutoff", {**cutoff, "time": "17:40"}),
        ("admin", "DELETE", "/api/v1/cutoffs/{id}/", "new-cutoff", {}),
    ]


def test_every_mutating_route_is_called_here(portal):
    mutating = {
        (method, route)
        for route, methods in MATRIX.items()
        if route not in FEEDS
        for method in methods
        if method != "GET"
    }
    called = {(method, route) for _, method, route, *_ in calls(portal)}
    assert sorted(mutating - called) == []


def test_every_action_and_change_through_the_api_is_audited(portal, operator, administrator):
    from scheduling.workflows.models import Job, JobStatus

    users = {"admin": administrator, "operator": operator}
    made: dict[str, int] = {}
    for who, method, route, url, body in calls(portal):
        client = portal[who]
        if url == "error-job":
            job = Job.objects.order_by("-id").first()
            Job.objects.filter(id=job.id).update(status=JobStatus.ERROR)  # as a failed step would leave it
            url = route.replace("{id}", str(job.id))
        elif not url.startswith("/"):
            url = route.replace("{id}", str(made[url]))
        last = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0

        if method == "DELETE":
            answer = client.delete(f"{url}?reason={REASON}")
        else:
            answer = client.generic(method, url, json.dumps({**body, "reason": REASON}), content_type="application/json")

        assert answer.status_code < 300, f"{method} {url}: {answer.status_code} {answer.content[:300]!r}"
        if method == "POST" and route.count("/") == 4 and answer.status_code == 201:
            made[{"batch-configs": "new-config", "calendar-groups": "new-group", "interfaces": "new-interface",
                  "scheduler-tasks": "new-task", "notification-channels": "new-channel", "alert-rules": "new-rule",
                  "cutoffs": "new-cutoff"}.get(route.split("/")[3], "other")] = answer.json()["id"]
        entries = list(AuditEntry.objects.filter(id__gt=last).order_by("id"))
        assert entries, f"{method} {route} left no audit row"
        for entry in entries:
            where = f"{method} {route} ({entry.action})"
            assert entry.actor_id == users[who].id and entry.actor_name == users[who].username, where
            assert entry.at.isoformat().replace("+00:00", "Z") == WHEN, where
            assert entry.action and entry.object_type and entry.object_id, where
            assert entry.before is not None or entry.after is not None, where
            if method == "DELETE":
                assert entry.before and entry.after in (None, {}), where
            elif method in ("PUT", "PATCH") or (method == "POST" and route.count("/") > 4 and not route.endswith("/add/")):
                assert entry.before is not None and entry.after is not None, where
            assert entry.reason == REASON, where


def test_the_audit_log_is_readable_through_the_api_newest_first(portal, operator, viewer, api_client_for):
    job = first_id(portal["admin"], "/api/v1/jobs/", spool="demo")
    portal["operator"].post(f"/api/v1/jobs/{job}/pause/", {"reason": REASON}, format="json")
    portal["operator"].post(f"/api/v1/jobs/{job}/comment/", {"comment": "checked", "reason": REASON}, format="json")

    rows = api_client_for(viewer).get("/api/v1/audit/", {"actor": "operator"}).json()["results"]

    assert [row["action"] for row in rows] == ["job.comment", "job.pause"]
    assert rows[1]["before"]["status"] == "Waiting" and rows[1]["after"]["status"] == "Pause"
    assert rows[0]["at"] == WHEN and rows[0]["reason"] == REASON
    assert rows[0]["object_type"] == "scheduling.Job" and rows[0]["object_id"] == str(job)
    assert api_client_for(viewer).get("/api/v1/audit/", {"object_id": str(job), "action": "job.pause"}).json()["results"][0]["id"] == rows[1]["id"]
