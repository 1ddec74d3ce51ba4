"""The admin screens: pages render for each role, actions call the audited services."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry
from scheduling.scheduler.models import CalendarEntry, CalendarGroup, SchedulerTask, TaskState

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/scheduling/schedulertask/",
    "/admin/scheduling/schedulertask/add/",
    "/admin/scheduling/calendargroup/",
    "/admin/scheduling/calendargroup/add/",
    "/admin/scheduling/calendarentry/",
    "/admin/scheduling/tasktransition/",
    "/admin/monitoring/monitoredinterface/",
]


def staff(user):
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def admin_client_for(client):
    def login(user):
        client.force_login(staff(user))
        return client

    return login


def test_every_page_renders_for_an_administrator(administrator, admin_client_for, make_task, make_group, now):
    now("2026-03-02T10:00:00Z")
    group = make_group(holidays=["2026-05-01"], hours=[("07:00", "18:00")])
    task = make_task(calendar_groups=[group])
    client = admin_client_for(administrator)
    for page in [*PAGES, f"/admin/scheduling/schedulertask/{task.id}/change/", f"/admin/scheduling/calendargroup/{group.id}/change/"]:
        assert client.get(page).status_code == 200, page


def test_a_viewer_sees_but_may_not_change_or_command(viewer, admin_client_for, make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    client = admin_client_for(viewer)
    page = client.get("/admin/scheduling/schedulertask/")
    assert page.status_code == 200
    assert b'value="suspend"' not in page.content
    assert client.get("/admin/scheduling/schedulertask/add/").status_code == 403
    client.post("/admin/scheduling/schedulertask/", {"action": "disable", "_selected_action": [task.id], "apply": "1"})
    task.refresh_from_db()
    assert task.state == TaskState.ACTIVE


def test_creating_a_task_in_the_admin_makes_it_active_with_its_transition(administrator, admin_client_for, make_group, now):
    now("2026-03-02T10:00:00Z")
    group = make_group()
    answer = admin_client_for(administrator).post(
        "/admin/scheduling/schedulertask/add/",
        {"name": "gateway summary", "subtype": "INVOKED_SERVICE_MONITOR", "interfaces": [], "calendar_groups": [group.id],
         "interval_seconds": "600", "enabled": "on",
         "transitions-TOTAL_FORMS": "0", "transitions-INITIAL_FORMS": "0"},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    task = SchedulerTask.objects.get(name="gateway summary")
    assert task.state == TaskState.ACTIVE and list(task.calendar_groups.all()) == [group]
    assert task.transitions.get().actor == administrator
    assert AuditEntry.objects.get(action="scheduler_task.create").actor == administrator


def test_an_interval_under_ten_seconds_is_refused_in_the_admin(administrator, admin_client_for):
    answer = admin_client_for(administrator).post(
        "/admin/scheduling/schedulertask/add/",
        {"name": "fast", "subtype": "BATCH_MONITOR", "interval_seconds": "5", "enabled": "on",
         "transitions-TOTAL_FORMS": "0", "transitions-INITIAL_FORMS": "0"},
    )
    assert answer.status_code == 200 and b"greater than or equal to 10" in answer.content
    assert not SchedulerTask.objects.exists()


def test_suspend_action_asks_for_a_reason_then_suspends_and_audits(operator, admin_client_for, make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    client = admin_client_for(operator)
    form = client.post("/admin/scheduling/schedulertask/", {"action": "suspend", "_selected_action": [task.id]})
    assert form.status_code == 200 and b"resume_at" in form.content
    done = client.post(
        "/admin/scheduling/schedulertask/",
        {"action": "suspend", "_selected_action": [task.id], "apply": "1", "reason": "bank holiday run", "resume_at": "2026-03-03 07:00"},
    )
    assert done.status_code == 302
    task.refresh_from_db()
    assert (task.state, task.suspended_reason, task.resume_at.isoformat()) == ("SUSPENDED", "bank holiday run", "2026-03-03T07:00:00+00:00")
    assert AuditEntry.objects.get(action="scheduler_task.suspend").actor == operator


def test_a_refused_admin_command_says_why(operator, admin_client_for, make_task, now):
    now("2026-03-02T10:00:00Z")
    task = make_task()
    client = admin_client_for(operator)
    answer = client.post("/admin/scheduling/schedulertask/", {"action": "resume", "_selected_action": [task.id], "apply": "1"}, follow=True)
    assert b"annot resume task summary: it is ACTIVE" in answer.content  # the admin capitalises messages


def test_import_holidays_admin_action(administrator, admin_client_for, make_group):
    group = make_group()
    client = admin_client_for(administrator)
    client.post(
        "/admin/scheduling/calendargroup/",
        {"action": "import_holidays", "_selected_action": [group.id], "apply": "1", "code": "TAR", "year": "2026"},
    )
    assert group.entries.filter(deleted=False).count() == 6


def test_calendar_entries_filter_as_active_historic_and_deleted(administrator, admin_client_for, make_group, now):
    now("2026-06-01T10:00:00Z")
    group = make_group(holidays=["2026-05-01", "2026-12-25", "2026-12-26"])
    client = admin_client_for(administrator)
    client.post("/admin/scheduling/calendarentry/", {"action": "soft_delete", "_selected_action": [group.entries.get(date="2026-12-26").id], "index": "0"})

    def listed(status):
        page = client.get("/admin/scheduling/calendarentry/", {"status": status})
        return sorted(str(e.date) for e in page.context["cl"].result_list)

    assert listed("active") == ["2026-12-25"]
    assert listed("historic") == ["2026-05-01"]
    assert listed("deleted") == ["2026-12-26"]
    assert CalendarEntry.objects.count() == 3
    assert AuditEntry.objects.filter(action="calendar_entry.delete").count() == 1


def test_editing_a_group_with_its_inline_entries_is_audited(administrator, admin_client_for, make_group):
    group = make_group(hours=[("07:00", "18:00")])
    schedule = group.schedule_entries.get()
    answer = admin_client_for(administrator).post(
        f"/admin/scheduling/calendargroup/{group.id}/change/",
        {
            "name": "TARGET2", "timezone": "Europe/Berlin", "weekend_days": ["6", "7"],
            "schedule_entries-TOTAL_FORMS": "1", "schedule_entries-INITIAL_FORMS": "1",
            "schedule_entries-0-id": schedule.id, "schedule_entries-0-group": group.id,
            "schedule_entries-0-type_code": "DAY", "schedule_entries-0-open_time": "08:00", "schedule_entries-0-close_time": "17:00",
            "entries-TOTAL_FORMS": "1", "entries-INITIAL_FORMS": "0",
            "entries-0-group": group.id, "entries-0-date": "2026-05-01", "entries-0-description": "Labour Day",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    audit = AuditEntry.objects.get(action="calendar_group.update")
    assert audit.before["schedule_entries"][0]["open_time"] == "07:00:00"
    assert audit.after["schedule_entries"][0]["open_time"] == "08:00:00"
    assert audit.after["entries"] == [{"date": "2026-05-01", "description": "Labour Day"}]
    assert CalendarGroup.objects.get().weekend_days == [6, 7]


def test_adding_and_changing_a_calendar_entry_on_its_own_page_is_audited(administrator, admin_client_for, make_group, now):
    now("2026-03-02T10:00:00Z")
    group = make_group()
    client = admin_client_for(administrator)
    added = client.post("/admin/scheduling/calendarentry/add/", {"group": group.id, "date": "2026-05-01", "description": "Labour Day"})
    assert added.status_code == 302, added.content.decode()[:2000]
    entry = CalendarEntry.objects.get()
    changed = client.post(
        f"/admin/scheduling/calendarentry/{entry.id}/change/", {"group": group.id, "date": "2026-05-01", "description": "May Day"}
    )
    assert changed.status_code == 302

    create, update = AuditEntry.objects.filter(action__startswith="calendar_entry.").order_by("id")
    assert (create.action, create.actor, create.before) == ("calendar_entry.create", administrator, None)
    assert create.after == {"group": "TARGET2", "date": "2026-05-01", "description": "Labour Day", "deleted": False}
    assert update.action == "calendar_entry.update"
    assert (update.before["description"], update.after["description"]) == ("Labour Day", "May Day")


def test_an_entry_ticked_deleted_in_the_group_inline_records_when(administrator, admin_client_for, make_group, now):
    now("2026-03-02T10:00:00Z")
    group = make_group(holidays=["2026-05-01"])
    entry = group.entries.get()
    answer = admin_client_for(administrator).post(
        f"/admin/scheduling/calendargroup/{group.id}/change/",
        {
            "name": "TARGET2", "timezone": "Europe/Berlin", "weekend_days": ["6", "7"],
            "schedule_entries-TOTAL_FORMS": "0", "schedule_entries-INITIAL_FORMS": "0",
            "entries-TOTAL_FORMS": "1", "entries-INITIAL_FORMS": "1",
            "entries-0-id": entry.id, "entries-0-group": group.id, "entries-0-date": "2026-05-01",
            "entries-0-description": "holiday", "entries-0-deleted": "on",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    entry.refresh_from_db()
    assert entry.deleted and entry.deleted_at.isoformat() == "2026-03-02T10:00:00+00:00"
