"""/api/v1/cutoffs/ (DOMAIN §8): Administrators write by natural keys, audited; everyone who reads sees the countdown."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry
from scheduling.cutoffs.models import CutOff
from tests.cutoffs.conftest import feed

pytestmark = pytest.mark.django_db

URL = "/api/v1/cutoffs/"
BODY = {
    "name": "TARGET2 customer",
    "interface": "PAYMENT_ORIGINATOR",
    "currencies": ["EUR"],
    "time": "17:00",
    "calendar_group": "TARGET2",
    "effective_from": "2026-01-01",
    "effective_to": None,
    "warn_minutes": 30,
    "min_value": "0.00",
}


def test_an_administrator_creates_a_cut_off_and_everyone_reads_its_countdown_and_pending(target2, administrator, viewer, api_client_for, now):
    now("2026-03-02T15:00:00Z")  # 16:00 in Berlin: an hour to go
    feed(
        ("P1", "200.25", "EUR", "2026-03-02T09:00:00Z", None),
        ("P2", "150.25", "EUR", "2026-03-02T10:00:00Z", None),
        ("P3", "99.99", "USD", "2026-03-02T11:00:00Z", None),  # not this cut-off's currency
        ("P4", "7.00", "EUR", "2026-03-02T16:00:00Z", None),  # received later than now
    )
    answer = api_client_for(administrator).post(URL, BODY, format="json")
    assert answer.status_code == 201, answer.json()

    [row] = api_client_for(viewer).get(URL).json()["results"]
    assert row["next_at"] == "2026-03-02T16:00:00Z"
    assert row["seconds_left"] == 3600
    assert row["pending"] == {"EUR": {"count": 2, "value": "350.50"}}
    assert {k: row[k] for k in ("name", "interface", "currencies", "time", "calendar_group", "effective_from", "effective_to", "warn_minutes")} == {
        k: BODY[k] for k in ("name", "interface", "currencies", "time", "calendar_group", "effective_from", "effective_to", "warn_minutes")
    }
    entry = AuditEntry.objects.get(action="cutoff.create")
    assert entry.actor_name == "administrator" and entry.after["calendar_group"] == "TARGET2"


def test_after_the_cut_off_the_countdown_runs_to_the_next_business_day(target2, administrator, api_client_for, now):
    now("2026-03-06T16:30:00Z")  # Friday after the cut-off: next is Monday
    api_client_for(administrator).post(URL, BODY, format="json")
    [row] = api_client_for(administrator).get(URL).json()["results"]
    assert row["next_at"] == "2026-03-09T16:00:00Z"


def test_an_update_and_a_delete_are_audited(target2, administrator, api_client_for, now):
    now("2026-03-02T08:00:00Z")
    client = api_client_for(administrator)
    created = client.post(URL, BODY, format="json").json()
    answer = client.patch(f"{URL}{created['id']}/", {"time": "17:40", "effective_to": "2026-12-31"}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["time"] == "17:40"
    assert client.delete(f"{URL}{created['id']}/").status_code == 204
    actions = list(AuditEntry.objects.filter(action__startswith="cutoff.").order_by("id").values_list("action", flat=True))
    assert actions == ["cutoff.create", "cutoff.update", "cutoff.delete"]
    assert AuditEntry.objects.get(action="cutoff.update").before["time"] == "17:00:00"


@pytest.mark.parametrize("role", ["viewer", "operator", "feeder"])
def test_only_administrators_write(role, request, target2, api_client_for):
    user = request.getfixturevalue(role)
    assert api_client_for(user).post(URL, BODY, format="json").status_code == 403
    assert not CutOff.objects.exists()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"interface": "NO_SUCH_INTERFACE"}, "interface"),
        ({"time": "25:00"}, "time"),
        ({"effective_from": "2026-06-01", "effective_to": "2026-05-31"}, "effective_to"),
        ({"currencies": ["EUR", "XYZ"]}, "currencies"),
        ({"warn_minutes": -5}, "warn_minutes"),
        ({"calendar_group": "NO_SUCH_GROUP"}, "calendar_group"),
        ({"min_value": "-1"}, "min_value"),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_writes_nothing(change, field, target2, administrator, api_client_for):
    answer = api_client_for(administrator).post(URL, {**BODY, **change}, format="json")
    assert answer.status_code == 400
    assert field in answer.json()
    assert not CutOff.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="cutoff.").exists()


def test_a_bad_update_changes_nothing(target2, administrator, api_client_for):
    client = api_client_for(administrator)
    created = client.post(URL, {**BODY, "effective_from": "2026-01-01"}, format="json").json()
    answer = client.patch(f"{URL}{created['id']}/", {"effective_to": "2025-12-31"}, format="json")
    assert answer.status_code == 400 and "effective_to" in answer.json()
    assert CutOff.objects.get().effective_to is None
