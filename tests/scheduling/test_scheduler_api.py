"""/api/v1/scheduler-tasks/ and /api/v1/interfaces/: configuration, commands, transitions, permissions."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry
from scheduling.scheduler.models import SchedulerTask, TaskState
from scheduling.scheduler.services import scheduler_task_disable, scheduler_task_suspend

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/scheduler-tasks/"


def new_task(client, **fields):
    body = {"name": "hosted summary", "subtype": "HOSTED_SERVICE_MONITOR", "interfaces": ["PAYMENT_ORIGINATOR"],
            "interval_seconds": 300, **fields}
    return client.post(TASKS, body, format="json")


def test_an_administrator_creates_a_task_that_is_active_at_once(administrator, api_client_for, make_group, now):
    now("2026-03-02T10:00:00Z")
    make_group("TARGET2")
    answer = new_task(api_client_for(administrator), calendar_groups=["TARGET2"])
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["interfaces"] == ["PAYMENT_ORIGINATOR"] and body["calendar_groups"] == ["TARGET2"]
    assert (body["state"], body["enabled"], body["next_timeout_at"]) == ("ACTIVE", True, "2026-03-02T10:05:00Z")
    assert body["last_fired_at"] is None and body["last_error"] == ""
    assert AuditEntry.objects.get(action="scheduler_task.create").actor == administrator


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"interval_seconds": 9}, "interval_seconds", "greater than or equal to 10"),
        ({"interfaces": ["NOPE"]}, "interfaces", "NOPE"),
        ({"interfaces": ["LIQUIDITY_SERVICE"]}, "interfaces", "LIQUIDITY_SERVICE is INVOKED"),
        ({"calendar_groups": ["MARS"]}, "calendar_groups", "MARS"),
        ({"subtype": "SOMETHING"}, "subtype", "SOMETHING"),
    ],
)
def test_bad_task_input_is_a_400_naming_the_field_and_writes_nothing(administrator, api_client_for, fields, field, words):
    answer = new_task(api_client_for(administrator), **fields)
    assert answer.status_code == 400
    assert words in str(answer.json()[field])
    assert not SchedulerTask.objects.exists()


def test_configuration_is_for_administrators_only(operator, viewer, api_client_for):
    assert new_task(api_client_for(operator)).status_code == 403
    assert new_task(api_client_for(viewer)).status_code == 403
    assert api_client_for(viewer).get(TASKS).status_code == 200


def test_editing_a_task_through_the_api_is_audited(administrator, api_client_for, make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task(interval_seconds=300)
    answer = api_client_for(administrator).patch(f"{TASKS}{task.id}/", {"interval_seconds": 600, "enabled": False}, format="json")
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["interval_seconds"], answer.json()["state"]) == (600, "DISABLED")
    assert AuditEntry.objects.filter(action="scheduler_task.update", actor=administrator).count() == 1


def test_tasks_filter_by_state_interface_and_group(viewer, api_client_for, make_task, make_group, now, operator):
    from monitoring.summaries.models import MonitoredInterface

    now("2026-03-02T10:00:00Z")
    group = make_group("TARGET2")
    make_task("a", subtype="INVOKED_SERVICE_MONITOR", interfaces=[MonitoredInterface.objects.get(code="REPAIR_SERVICE")])
    b = make_task("b", calendar_groups=[group])
    scheduler_task_disable(actor=operator, task=b)
    client = api_client_for(viewer)
    names = lambda query: [t["name"] for t in client.get(TASKS, query).json()["results"]]  # noqa: E731
    assert names({"state": "DISABLED"}) == ["b"]
    assert names({"interface": "REPAIR_SERVICE"}) == ["a"]
    assert names({"calendar_group": "TARGET2"}) == ["b"]


def test_transitions_are_listed_per_task_with_actor_and_note(viewer, operator, api_client_for, make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    scheduler_task_suspend(actor=operator, task=task, reason="maintenance")
    answer = api_client_for(viewer).get(f"{TASKS}{task.id}/transitions/")
    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert [(r["from_state"], r["to_state"], r["event"], r["actor"]) for r in rows] == [
        ("INACTIVE", "ACTIVE", "E_Enable", "test"),
        ("ACTIVE", "SUSPENDED", "E_Suspend", "operator"),
    ]
    assert rows[1]["note"] == "maintenance" and rows[1]["at"] == "2026-03-02T10:00:00Z"


# --- the permission matrix of the commands ---------------------------------------------------

COMMANDS = {
    # command: (state to start from, body, state after)
    "enable": ("DISABLED", {}, "ACTIVE"),
    "disable": ("ACTIVE", {"reason": "retired"}, "DISABLED"),
    "suspend": ("ACTIVE", {"reason": "maintenance", "resume_at": "2026-03-02T12:00:00Z"}, "SUSPENDED"),
    "resume": ("SUSPENDED", {}, "ACTIVE"),
    "run-now": ("ACTIVE", {}, "ACTIVE"),
}


def task_in(state: str, make_task, operator) -> SchedulerTask:
    task = make_task()
    if state == "DISABLED":
        scheduler_task_disable(actor=operator, task=task)
    elif state == "SUSPENDED":
        scheduler_task_suspend(actor=operator, task=task, reason="setup")
    return task


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("feeder", 403), ("operator", 200), ("administrator", 200), (None, 401)])
def test_command_permission_matrix(request, recorder, api_client_for, make_task, now, command, role, expected):
    now("2026-03-02T10:00:00Z")
    setup_operator = request.getfixturevalue("operator")
    user = setup_operator if role == "operator" else (request.getfixturevalue(role) if role else None)
    start, body, after = COMMANDS[command]
    task = task_in(start, make_task, setup_operator)
    audits = AuditEntry.objects.count()

    answer = api_client_for(user).post(f"{TASKS}{task.id}/{command}/", body, format="json")

    assert answer.status_code == expected
    task.refresh_from_db()
    if expected == 200:
        assert answer.json()["state"] == task.state == after
        assert AuditEntry.objects.filter(action=f"scheduler_task.{command}", actor=user).count() == 1
    else:
        assert task.state == start and AuditEntry.objects.count() == audits


def test_a_command_refused_by_the_state_is_a_409_with_the_state(operator, api_client_for, make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    answer = api_client_for(operator).post(f"{TASKS}{task.id}/resume/", {}, format="json")
    assert answer.status_code == 409
    assert answer.json() == {"detail": "cannot resume task summary: it is ACTIVE", "state": "ACTIVE"}


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "reason"), ({"reason": ""}, "reason"), ({"reason": "x", "resume_at": "2026-03-02T09:00:00Z"}, "resume_at"),
     ({"reason": "x", "resume_at": "soon"}, "resume_at")],
)
def test_suspend_input_is_checked(operator, api_client_for, make_task, now, body, field):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    answer = api_client_for(operator).post(f"{TASKS}{task.id}/suspend/", body, format="json")
    assert answer.status_code == 400 and field in answer.json()
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE


def test_run_now_through_the_api_runs_the_action(operator, recorder, api_client_for, make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    now("2026-03-02T10:01:00Z")
    answer = api_client_for(operator).post(f"{TASKS}{task.id}/run-now/", {"reason": "verify"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["last_fired_at"] == "2026-03-02T10:01:00Z"  # Q_SYNC: the worker ran it at once
    assert len(recorder.calls) == 1


# --- interfaces ----------------------------------------------------------------------------


def test_interfaces_list_the_five_defaults_by_code(viewer, api_client_for):
    rows = api_client_for(viewer).get("/api/v1/interfaces/").json()["results"]
    assert {r["code"]: r["direction"] for r in rows} == {
        "PAYMENT_ORIGINATOR": "HOSTED", "BATCH_PAYMENT_ORIGINATOR": "HOSTED",
        "LIQUIDITY_SERVICE": "INVOKED", "REPAIR_SERVICE": "INVOKED", "PAYMENTS_GATEWAY": "INVOKED",
    }
    assert set(rows[0]) == {"id", "code", "name", "direction", "inbound_channel", "outbound_channel"}
    hosted = api_client_for(viewer).get("/api/v1/interfaces/", {"direction": "HOSTED"}).json()["results"]
    assert len(hosted) == 2


def test_an_administrator_adds_an_interface_and_a_viewer_may_not(administrator, viewer, api_client_for):
    body = {"code": "CARD_SWITCH", "name": "Card switch", "direction": "INVOKED", "inbound_channel": "CS.IN", "outbound_channel": "CS.OUT"}
    assert api_client_for(viewer).post("/api/v1/interfaces/", body, format="json").status_code == 403
    answer = api_client_for(administrator).post("/api/v1/interfaces/", body, format="json")
    assert answer.status_code == 201
    assert AuditEntry.objects.get(action="interface.create").after["code"] == "CARD_SWITCH"
    bad = api_client_for(administrator).post("/api/v1/interfaces/", {**body, "code": "X", "direction": "SIDEWAYS"}, format="json")
    assert bad.status_code == 400 and "direction" in bad.json()
