"""The cut-offs' admin pages: Administrators add through the API's service (validated, audited); readers look."""

from __future__ import annotations

import pytest

from monitoring.summaries.models import MonitoredInterface
from portal.models import AuditEntry
from scheduling.cutoffs.models import CutOff

pytestmark = pytest.mark.django_db

ADD = "/admin/scheduling/cutoff/add/"


def form(target2, **changes) -> dict:
    values = {
        "name": "TARGET2 customer", "interface": MonitoredInterface.objects.get(code="PAYMENT_ORIGINATOR").id,
        "currencies": "eur, USD", "time": "17:00", "calendar_group": target2.id, "effective_from": "", "effective_to": "",
        "warn_minutes": "30", "min_value": "0",
    }
    values.update(changes)
    return values


def test_an_administrator_adds_a_cut_off_through_the_service(client, administrator, target2):
    client.force_login(administrator)
    answer = client.post(ADD, form(target2))
    assert answer.status_code == 302, answer.content.decode()[:2000]
    cutoff = CutOff.objects.get()
    assert cutoff.currencies == ["EUR", "USD"]
    assert AuditEntry.objects.get(action="cutoff.create").actor_name == "administrator"
    assert client.get("/admin/scheduling/cutoff/").status_code == 200


def test_the_admin_refuses_what_the_api_refuses(client, administrator, target2):
    client.force_login(administrator)
    answer = client.post(ADD, form(target2, currencies="EUR, XYZ", effective_from="2026-06-01", effective_to="2026-05-01"))
    assert answer.status_code == 200
    assert "XYZ" in answer.content.decode() and "before effective_from" in answer.content.decode()
    assert not CutOff.objects.exists()


def test_readers_look_but_do_not_add(client, viewer, target2):
    client.force_login(viewer)
    assert client.get("/admin/scheduling/cutoff/").status_code == 200
    assert client.post(ADD, form(target2)).status_code == 403


def test_the_admin_refuses_a_warning_longer_than_a_week_as_the_service_does(client, administrator, target2):
    """A warning beyond a week would put its instant outside the calendar and fail every tick."""
    client.force_login(administrator)
    answer = client.post(ADD, form(target2, warn_minutes=str(CutOff.WARN_MINUTES_MAX + 1)))
    assert answer.status_code == 200
    assert f"0 to {CutOff.WARN_MINUTES_MAX}" in answer.content.decode()
    assert not CutOff.objects.exists()
