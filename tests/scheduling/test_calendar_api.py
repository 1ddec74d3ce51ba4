"""/api/v1/calendar-groups/: entries and schedule entries written and read nested; bad input is a 400."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry
from scheduling.scheduler.models import CalendarEntry, CalendarGroup

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/calendar-groups/"

TARGET2 = {
    "name": "TARGET2",
    "timezone": "Europe/Berlin",
    "weekend_days": [6, 7],
    "entries": [{"date": "2026-05-01", "description": "Labour Day"}, {"date": "2026-12-25", "description": "Christmas"}],
    "schedule_entries": [{"type_code": "OPERATING_DAY", "open_time": "07:00:00", "close_time": "18:00:00"}],
}


def test_a_group_is_written_and_read_nested(administrator, viewer, api_client_for):
    created = api_client_for(administrator).post(GROUPS, TARGET2, format="json")
    assert created.status_code == 201, created.json()
    body = api_client_for(viewer).get(f"{GROUPS}{created.json()['id']}/").json()
    assert {k: v for k, v in body.items() if k != "id"} == TARGET2
    assert api_client_for(viewer).get(GROUPS, {"name": "TARGET2"}).json()["results"][0]["id"] == body["id"]
    assert AuditEntry.objects.get(action="calendar_group.create").after["entries"][0]["date"] == "2026-05-01"


def test_replacing_the_entries_soft_deletes_the_dropped_ones(administrator, api_client_for):
    client = api_client_for(administrator)
    group_id = client.post(GROUPS, TARGET2, format="json").json()["id"]
    changed = {"entries": [{"date": "2026-12-25", "description": "Christmas Day"}, {"date": "2026-12-26", "description": "Boxing Day"}]}
    answer = client.patch(f"{GROUPS}{group_id}/", changed, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["entries"] == changed["entries"]
    assert answer.json()["schedule_entries"] == TARGET2["schedule_entries"]  # not sent: unchanged
    assert CalendarEntry.objects.get(date="2026-05-01").deleted  # kept as history
    audit = AuditEntry.objects.get(action="calendar_group.update")
    assert len(audit.before["entries"]) == 2 and audit.after["entries"][1]["description"] == "Boxing Day"


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"timezone": "Mars/Olympus"}, ["timezone"], "not a known time zone"),
        ({"schedule_entries": [{"type_code": "DAY", "open_time": "18:00", "close_time": "07:00"}]},
         ["schedule_entries", "0", "close_time"], "must be after open time"),
        ({"weekend_days": [6, 8]}, ["weekend_days"], "less than or equal to 7"),
        ({"weekend_days": [1, 2, 3, 4, 5, 6, 7]}, ["weekend_days"], "never be open"),
        ({"entries": [{"date": "2026-05-01"}, {"date": "2026-05-01"}]}, ["entries"], "listed twice"),
        ({"entries": [{"date": "May Day"}]}, ["entries", "0", "date"], "Date has wrong format"),
    ],
)
def test_bad_group_input_is_a_400_naming_the_item_and_field(administrator, api_client_for, change, path, words):
    answer = api_client_for(administrator).post(GROUPS, {**TARGET2, **change}, format="json")
    assert answer.status_code == 400
    error = answer.json()
    for step in path:
        error = error[step]
    assert words in str(error)
    assert not CalendarGroup.objects.exists()


def test_groups_are_configured_by_administrators_only(operator, viewer, api_client_for):
    assert api_client_for(operator).post(GROUPS, TARGET2, format="json").status_code == 403
    assert api_client_for(viewer).post(GROUPS, TARGET2, format="json").status_code == 403
    assert api_client_for(viewer).get(GROUPS).status_code == 200
