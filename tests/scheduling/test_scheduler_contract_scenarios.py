"""DOMAIN §2 and §4 driven through the public surfaces only: the API, `heartbeat --once --now`, /healthz."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from portal.models import AuditEntry, OutboundMessage

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/calendar-groups/"
TASKS = "/api/v1/scheduler-tasks/"


def heartbeat(at: str) -> str:
    out = io.StringIO()
    call_command("heartbeat", "--once", "--now", at, stdout=out)
    return out.getvalue()


def transitions(client, task_id: int) -> list[tuple[str, str, str]]:
    rows = client.get(f"{TASKS}{task_id}/transitions/").json()["results"]
    return [(row["from_state"], row["to_state"], row["event"]) for row in rows]


@pytest.fixture
def admin_api(administrator, api_client_for):
    return api_client_for(administrator)


@pytest.fixture
def operator_api(operator, api_client_for):
    return api_client_for(operator)


def create_task(client, **fields) -> dict:
    body = {"name": "scan", "subtype": "BATCH_MONITOR", "interval_seconds": 300, "enabled": True} | fields
    answer = client.post(TASKS, body, format="json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


def test_a_task_created_enabled_starts_at_once_and_fires_on_the_heartbeat(admin_api, now):
    now("2026-03-02T10:00:00Z")
    task = create_task(admin_api)
    assert task["state"] == "ACTIVE"
    assert task["next_timeout_at"] == "2026-03-02T10:05:00Z"
    assert task["last_interval_end_at"] == "2026-03-02T10:00:00Z"
    assert transitions(admin_api, task["id"]) == [("INACTIVE", "ACTIVE", "E_Enable")]

    heartbeat("2026-03-02T10:04:59Z")
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["state"] == "ACTIVE"
    heartbeat("2026-03-02T10:05:30Z")
    after = admin_api.get(f"{TASKS}{task['id']}/").json()
    assert after["last_fired_at"] == after["last_interval_end_at"] == "2026-03-02T10:05:30Z"
    assert after["next_timeout_at"] == "2026-03-02T10:10:30Z"
    assert transitions(admin_api, task["id"])[1:] == [
        ("ACTIVE", "PROCESSING", "E_Heartbeat"),
        ("PROCESSING", "ACTIVE", "E_ActionDone"),
    ]


def test_a_task_created_disabled_stays_inactive_until_enabled(admin_api, operator_api, now):
    now("2026-03-02T10:00:00Z")
    task = create_task(admin_api, enabled=False)
    assert task["state"] == "INACTIVE" and task["next_timeout_at"] is None
    heartbeat("2026-03-02T11:00:00Z")
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["state"] == "INACTIVE"

    now("2026-03-02T11:00:10Z")
    answer = operator_api.post(f"{TASKS}{task['id']}/enable/", {}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["state"], answer.json()["enabled"]) == ("ACTIVE", True)
    assert answer.json()["next_timeout_at"] == "2026-03-02T11:05:10Z"
    assert answer.json()["last_interval_end_at"] == "2026-03-02T11:00:10Z"


def test_a_group_with_several_opening_periods_and_an_entry_deleted_later(admin_api, now):
    now("2026-03-02T06:00:00Z")  # Monday
    group = {
        "name": "LONDON",
        "timezone": "Europe/London",
        "weekend_days": [6, 7],
        "entries": [{"date": "2026-03-03", "description": "closure"}],
        "schedule_entries": [
            {"type_code": "AM", "open_time": "08:00:00", "close_time": "12:00:00"},
            {"type_code": "PM", "open_time": "13:00:00", "close_time": "17:00:00"},
        ],
    }
    created = admin_api.post(GROUPS, group, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["entries"] == [{"date": "2026-03-03", "description": "closure"}]
    assert [e["type_code"] for e in created.json()["schedule_entries"]] == ["AM", "PM"]
    task = create_task(admin_api, interval_seconds=3600, calendar_groups=["LONDON"])
    assert task["calendar_groups"] == ["LONDON"]

    heartbeat("2026-03-02T12:30:00Z")  # lunch break: closed; next opening 13:00
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["next_timeout_at"] == "2026-03-02T13:00:00Z"

    heartbeat("2026-03-02T17:00:00Z")  # [open, close): 17:00 is closed; Tuesday is the closure
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["next_timeout_at"] == "2026-03-04T08:00:00Z"

    # The closure is dropped: its entry is soft-deleted, Tuesday is business time again, and
    # the timeout the tick had moved past it comes back to Tuesday's opening.
    now("2026-03-02T17:10:00Z")
    answer = admin_api.patch(f"{GROUPS}{created.json()['id']}/", {"entries": []}, format="json")
    assert answer.status_code == 200 and answer.json()["entries"] == []
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["next_timeout_at"] == "2026-03-03T08:00:00Z"
    heartbeat("2026-03-03T08:00:20Z")
    fired = admin_api.get(f"{TASKS}{task['id']}/").json()
    assert fired["last_fired_at"] == "2026-03-03T08:00:20Z" and fired["next_timeout_at"] == "2026-03-03T09:00:20Z"


def test_a_calendar_change_leaves_a_timeout_that_was_not_deferred_alone(admin_api, now):
    now("2026-03-02T09:00:00Z")  # Monday, open
    admin_api.post(GROUPS, {"name": "UTC-DAYS", "timezone": "UTC", "weekend_days": [6, 7]}, format="json")
    task = create_task(admin_api, interval_seconds=3600, calendar_groups=["UTC-DAYS"])
    group_id = admin_api.get(GROUPS).json()["results"][0]["id"]
    now("2026-03-02T09:30:00Z")
    admin_api.patch(f"{GROUPS}{group_id}/", {"weekend_days": []}, format="json")
    admin_api.patch(f"{GROUPS}{group_id}/", {"entries": [{"date": "2026-03-02", "description": "closed today"}]}, format="json")
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["next_timeout_at"] == "2026-03-02T10:00:00Z"
    heartbeat("2026-03-02T10:00:00Z")  # the new holiday is found by the tick itself
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["next_timeout_at"] == "2026-03-03T00:00:00Z"


def test_taking_the_group_off_a_deferred_task_makes_it_due_again(admin_api, now):
    now("2026-03-06T17:00:00Z")  # Friday
    admin_api.post(GROUPS, {"name": "UTC-DAYS", "timezone": "UTC", "weekend_days": [6, 7]}, format="json")
    task = create_task(admin_api, interval_seconds=3600, calendar_groups=["UTC-DAYS"])
    heartbeat("2026-03-07T00:00:00Z")  # Saturday: moved to Monday
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["next_timeout_at"] == "2026-03-09T00:00:00Z"

    now("2026-03-07T09:00:00Z")
    answer = admin_api.patch(f"{TASKS}{task['id']}/", {"calendar_groups": []}, format="json")
    assert answer.status_code == 200 and answer.json()["next_timeout_at"] == "2026-03-07T09:00:00Z"
    heartbeat("2026-03-07T09:00:30Z")
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["last_fired_at"] == "2026-03-07T09:00:30Z"


def test_several_groups_are_open_when_any_is(admin_api, now):
    now("2026-03-07T09:00:00Z")  # Saturday
    admin_api.post(GROUPS, {"name": "WEEKDAYS", "timezone": "UTC", "weekend_days": [6, 7]}, format="json")
    admin_api.post(GROUPS, {"name": "SATURDAYS", "timezone": "UTC", "weekend_days": [1, 2, 3, 4, 5, 7]}, format="json")
    task = create_task(admin_api, interval_seconds=3600, calendar_groups=["WEEKDAYS", "SATURDAYS"])
    heartbeat("2026-03-07T10:00:00Z")
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["last_fired_at"] == "2026-03-07T10:00:00Z"
    heartbeat("2026-03-08T10:00:00Z")  # Sunday: both closed, Monday 00:00 is the next open instant
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["next_timeout_at"] == "2026-03-09T00:00:00Z"


def test_suspend_through_the_api_resumes_by_itself_and_the_next_action_covers_the_suspension(admin_api, operator_api, operator, now):
    now("2026-03-02T10:00:00Z")
    task = create_task(admin_api)
    now("2026-03-02T10:01:00Z")
    answer = operator_api.post(
        f"{TASKS}{task['id']}/suspend/", {"reason": "upstream maintenance", "resume_at": "2026-03-02T11:00:00Z"}, format="json"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["state"], body["suspended_reason"], body["suspended_by"], body["resume_at"]) == (
        "SUSPENDED", "upstream maintenance", "operator", "2026-03-02T11:00:00Z"
    )
    heartbeat("2026-03-02T10:30:00Z")
    assert admin_api.get(f"{TASKS}{task['id']}/").json()["state"] == "SUSPENDED"

    heartbeat("2026-03-02T11:00:00Z")
    after = admin_api.get(f"{TASKS}{task['id']}/").json()
    assert after["state"] == "ACTIVE" and after["resume_at"] is None
    assert after["last_fired_at"] == "2026-03-02T11:00:00Z"
    assert [t[2] for t in transitions(admin_api, task["id"])] == ["E_Enable", "E_Suspend", "E_Resume", "E_Heartbeat", "E_ActionDone"]
    [suspended] = [row for row in admin_api.get(f"{TASKS}{task['id']}/transitions/").json()["results"] if row["event"] == "E_Suspend"]
    assert suspended["actor"] == "operator" and "upstream maintenance" in suspended["note"]


def test_disable_and_enable_through_the_api_start_afresh(admin_api, operator_api, now):
    now("2026-03-02T10:00:00Z")
    task = create_task(admin_api)
    now("2026-03-02T10:02:00Z")
    assert operator_api.post(f"{TASKS}{task['id']}/disable/", {"reason": "retired"}, format="json").json()["state"] == "DISABLED"
    heartbeat("2026-03-02T12:00:00Z")
    now("2026-03-02T12:00:30Z")
    body = operator_api.post(f"{TASKS}{task['id']}/enable/", {}, format="json").json()
    assert (body["state"], body["last_interval_end_at"], body["next_timeout_at"]) == (
        "ACTIVE", "2026-03-02T12:00:30Z", "2026-03-02T12:05:30Z"
    )
    assert AuditEntry.objects.filter(action__in=["scheduler_task.disable", "scheduler_task.enable"]).count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interval_seconds": 9}, "interval_seconds"),
        ({"interfaces": ["NO_SUCH_INTERFACE"]}, "interfaces"),
        ({"calendar_groups": ["NO_SUCH_GROUP"]}, "calendar_groups"),
        ({"subtype": "SOMETHING_ELSE"}, "subtype"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_task_input_names_the_field_and_writes_nothing(admin_api, now, body, field):
    now("2026-03-02T10:00:00Z")
    base = {"name": "scan", "subtype": "BATCH_MONITOR", "interval_seconds": 300, "enabled": True}
    answer = admin_api.post(TASKS, base | body, format="json")
    assert answer.status_code == 400 and field in answer.json()
    assert admin_api.get(TASKS).json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"schedule_entries": [{"type_code": "DAY", "open_time": "18:00", "close_time": "08:00"}]}, "schedule_entries"),
        ({"weekend_days": [0]}, "weekend_days"),
        ({"entries": [{"date": "2026-02-30", "description": "no such day"}]}, "entries"),
    ],
)
def test_bad_group_input_names_the_field_and_writes_nothing(admin_api, body, field):
    answer = admin_api.post(GROUPS, {"name": "G"} | body, format="json")
    assert answer.status_code == 400 and field in answer.json()
    assert admin_api.get(GROUPS).json()["results"] == []


def test_heartbeat_gap_is_sent_once_per_stale_period_and_healthz_follows_the_heartbeat(client, settings, now):
    settings.HEARTBEAT_SECONDS = 60
    heartbeat("2026-03-02T10:00:00Z")
    now("2026-03-02T10:03:00Z")  # exactly three intervals: not older than three
    assert client.get("/healthz").status_code == 200
    now("2026-03-02T10:03:01Z")
    assert client.get("/healthz").status_code == 503

    heartbeat("2026-03-02T10:10:00Z")
    heartbeat("2026-03-02T10:11:00Z")
    heartbeat("2026-03-02T10:12:00Z")
    [gap] = OutboundMessage.objects.filter(kind="HEARTBEAT_GAP")
    assert gap.status == "PENDING"
    assert gap.payload["heartbeat"]["blind_seconds"] == 600
    assert client.get("/healthz").status_code == 200

    heartbeat("2026-03-02T11:00:00Z")  # a second stale period: a second message
    assert OutboundMessage.objects.filter(kind="HEARTBEAT_GAP").count() == 2


def test_viewers_may_read_tasks_and_transitions_but_not_command(viewer, admin_api, api_client_for, now):
    now("2026-03-02T10:00:00Z")
    task = create_task(admin_api)
    client = api_client_for(viewer)
    assert client.get(f"{TASKS}{task['id']}/transitions/").status_code == 200
    for command, body in [("enable", {}), ("disable", {}), ("suspend", {"reason": "x"}), ("resume", {}), ("run-now", {})]:
        assert client.post(f"{TASKS}{task['id']}/{command}/", body, format="json").status_code == 403
