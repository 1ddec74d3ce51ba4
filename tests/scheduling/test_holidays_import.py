"""Public and market holidays imported by country or market code; the demo calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from portal.models import AuditEntry
from scheduling.scheduler.models import CalendarEntry, CalendarGroup, SchedulerTask

pytestmark = pytest.mark.django_db


def dates(group: CalendarGroup) -> list[str]:
    return [entry.date.isoformat() for entry in group.entries.filter(deleted=False).order_by("date")]


def test_import_holidays_adds_a_countrys_holidays_once(make_group, capsys):
    group = make_group("DE", holidays=["2026-12-24"])
    call_command("import_holidays", "DE", "DE", "2026")
    assert "9 holiday(s) added" in capsys.readouterr().out
    assert "2026-10-03" in dates(group) and "2026-12-24" in dates(group)
    assert group.entries.get(date="2026-10-03").description == "German Unity Day (DE)"

    call_command("import_holidays", "DE", "de", "2026")
    assert "0 holiday(s) added, 9 already there" in capsys.readouterr().out
    assert len(dates(group)) == 10
    assert AuditEntry.objects.filter(action="calendar_group.import_holidays").count() == 2


def test_market_and_subdivision_codes_are_understood(make_group):
    group = make_group("NYSE", timezone="America/New_York")
    call_command("import_holidays", "NYSE", "NYSE", "2026")
    assert "2026-11-26" in dates(group)  # Thanksgiving
    bavaria = make_group("BY")
    call_command("import_holidays", "BY", "DE-BY", "2026")
    assert "2026-01-06" in dates(bavaria)  # Epiphany, Bavarian only


def test_a_holiday_an_operator_deleted_stays_deleted_on_import(make_group):
    group = make_group("DE")
    call_command("import_holidays", "DE", "DE", "2026")
    CalendarEntry.objects.filter(group=group, date="2026-05-14").update(deleted=True)
    call_command("import_holidays", "DE", "DE", "2026")
    assert "2026-05-14" not in dates(group)


def test_an_imported_holiday_closes_the_business_day(make_group):
    group = make_group("TARGET2")
    good_friday = dt.datetime(2026, 4, 3, 10, tzinfo=dt.UTC)
    assert group.is_open(good_friday)
    call_command("import_holidays", "TARGET2", "TAR", "2026")
    assert not CalendarGroup.objects.get(id=group.id).is_open(good_friday)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [(["NOWHERE", "DE", "2026"], "no calendar group named 'NOWHERE'"), (["DE", "XX", "2026"], "'XX' is neither"),
     (["DE", "DE-ZZ", "2026"], "DE-ZZ")],
)
def test_import_holidays_refuses_bad_arguments(make_group, arguments, words):
    make_group("DE")
    with pytest.raises(CommandError, match=words):
        call_command("import_holidays", *arguments)
    assert not CalendarEntry.objects.exists()


def test_demo_loader_creates_the_target2_calendar_once_and_no_task(now):
    from scheduling.scheduler.demo import load_demo

    now("2026-03-02T10:00:00Z")
    load_demo()
    load_demo()
    target2 = CalendarGroup.objects.get(name="TARGET2")
    assert (target2.timezone, target2.weekend_days) == ("Europe/Berlin", [6, 7])
    assert {"2026-04-03", "2026-12-25", "2027-01-01"} <= set(dates(target2))
    assert not SchedulerTask.objects.exists()
