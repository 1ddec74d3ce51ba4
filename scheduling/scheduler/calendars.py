"""Calendar groups, their entries and public holidays (DOMAIN §2): configuration services, validated and audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from portal import clock, roles
from portal.services import audit_record
from scheduling.scheduler.models import (
    CalendarEntry,
    CalendarGroup,
    ScheduleEntry,
    SchedulerTask,
)
from scheduling.scheduler.services import scheduler_tasks_recheck_calendar

# --- configuration: interfaces and calendar groups --------------------------------------------


def _period_errors(schedule_entries: Sequence[Mapping]) -> list[str]:
    errors = []
    for number, entry in enumerate(schedule_entries, start=1):
        period = ScheduleEntry(type_code=entry.get("type_code", ""), open_time=entry.get("open_time"), close_time=entry.get("close_time"))
        try:
            period.full_clean(exclude=["group"])
        except ValidationError as exc:
            errors += [f"schedule entry {number}: {field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()]
    return errors


def _set_entries(group: CalendarGroup, entries: Sequence[Mapping]) -> None:
    """Make the active entries exactly ``entries``; dropped ones are soft-deleted, not removed."""
    wanted = {entry["date"]: entry.get("description", "") for entry in entries}
    if len(wanted) != len(entries):
        raise ValidationError({"entries": "a date is listed twice"})
    now = clock.now()
    for entry in group.entries.filter(deleted=False):
        if entry.date not in wanted:
            entry.deleted, entry.deleted_at = True, now
            entry.save(update_fields=["deleted", "deleted_at"])
        else:
            description = wanted.pop(entry.date)
            if entry.description != description:
                entry.description = description
                entry.save(update_fields=["description"])
    for date, description in wanted.items():
        revived = group.entries.filter(date=date, deleted=True).order_by("-id").first()
        if revived is not None:
            revived.deleted, revived.deleted_at, revived.description = False, None, description
            revived.save(update_fields=["deleted", "deleted_at", "description"])
        else:
            CalendarEntry.objects.create(group=group, date=date, description=description)


def _set_schedule(group: CalendarGroup, schedule_entries: Sequence[Mapping]) -> None:
    group.schedule_entries.all().delete()
    ScheduleEntry.objects.bulk_create(
        ScheduleEntry(group=group, type_code=e["type_code"], open_time=e["open_time"], close_time=e["close_time"])
        for e in schedule_entries
    )


def _check_group(group: CalendarGroup, schedule_entries: Sequence[Mapping] | None) -> None:
    errors: dict[str, list[str]] = {}
    try:
        group.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    period_errors = _period_errors(schedule_entries or [])
    if period_errors:
        errors["schedule_entries"] = period_errors
    if errors:
        raise ValidationError(errors)


def _fresh_group(group: CalendarGroup) -> CalendarGroup:
    return CalendarGroup.objects.prefetch_related("schedule_entries").get(id=group.id)


def calendar_group_create(
    *,
    actor,
    name: str,
    timezone: str = "UTC",
    weekend_days: Sequence[int] = (),
    entries: Sequence[Mapping] = (),
    schedule_entries: Sequence[Mapping] = (),
) -> CalendarGroup:
    """A calendar group with its non-business dates ({date, description}) and opening hours."""
    roles.require(actor, roles.ADMINISTRATORS, "creating a calendar group")
    now = clock.now()
    group = CalendarGroup(name=name, timezone=timezone, weekend_days=list(weekend_days), created_at=now, updated_at=now)
    _check_group(group, schedule_entries)
    with transaction.atomic():
        group.save()
        _set_entries(group, entries)
        _set_schedule(group, schedule_entries)
        group = _fresh_group(group)
        audit_record(actor=actor, action="calendar_group.create", obj=group, after=group.snapshot())
    return group


def calendar_group_update(
    *,
    actor,
    group: CalendarGroup,
    name: str | None = None,
    timezone: str | None = None,
    weekend_days: Sequence[int] | None = None,
    entries: Sequence[Mapping] | None = None,
    schedule_entries: Sequence[Mapping] | None = None,
) -> CalendarGroup:
    """Change a group (None: unchanged); ``entries`` and ``schedule_entries`` replace the lists."""
    roles.require(actor, roles.ADMINISTRATORS, "changing a calendar group")
    with transaction.atomic():
        group = _fresh_group(group)
        before = group.snapshot()
        group.name = name if name is not None else group.name
        group.timezone = timezone if timezone is not None else group.timezone
        group.weekend_days = list(weekend_days) if weekend_days is not None else group.weekend_days
        _check_group(group, schedule_entries)
        group.updated_at = clock.now()
        group.save()
        if entries is not None:
            _set_entries(group, entries)
        if schedule_entries is not None:
            _set_schedule(group, schedule_entries)
        group = _fresh_group(group)
        audit_record(actor=actor, action="calendar_group.update", obj=group, before=before, after=group.snapshot())
        scheduler_tasks_recheck_calendar(tasks=group.scheduler_tasks.all())
    return group


def calendar_group_delete(*, actor, group: CalendarGroup) -> None:
    roles.require(actor, roles.ADMINISTRATORS, "deleting a calendar group")
    with transaction.atomic():
        audit_record(actor=actor, action="calendar_group.delete", obj=group, before=_fresh_group(group).snapshot())
        task_ids = list(group.scheduler_tasks.values_list("id", flat=True))
        group.delete()
        scheduler_tasks_recheck_calendar(tasks=SchedulerTask.objects.filter(id__in=task_ids))


def calendar_entry_save(*, actor, entry: CalendarEntry) -> CalendarEntry:
    """Create or change one non-business date (the entries' own admin page), validated and audited."""
    roles.require(actor, roles.ADMINISTRATORS, "changing a calendar entry")
    entry.full_clean()
    with transaction.atomic():
        old = CalendarEntry.objects.select_related("group").filter(id=entry.id).first() if entry.id else None
        entry.save()
        audit_record(
            actor=actor,
            action="calendar_entry.update" if old else "calendar_entry.create",
            obj=entry,
            before=old.snapshot() if old else None,
            after=entry.snapshot(),
        )
        scheduler_tasks_recheck_calendar(tasks=SchedulerTask.objects.filter(calendar_groups=entry.group_id))
    return entry


def calendar_entries_delete(*, actor, entries: QuerySet[CalendarEntry], reason: str = "") -> int:
    """Soft-delete entries: the date becomes a business day again; the row stays as history."""
    roles.require(actor, roles.ADMINISTRATORS, "deleting calendar entries")
    now = clock.now()
    count = 0
    groups: set[int] = set()
    with transaction.atomic():
        for entry in entries.filter(deleted=False).select_related("group"):
            entry.deleted, entry.deleted_at = True, now
            entry.save(update_fields=["deleted", "deleted_at"])
            audit_record(actor=actor, action="calendar_entry.delete", obj=entry, before={"deleted": False}, after={"deleted": True}, reason=reason)
            count += 1
            groups.add(entry.group_id)
        scheduler_tasks_recheck_calendar(tasks=SchedulerTask.objects.filter(calendar_groups__in=groups).distinct())
    return count


def calendar_entries_restore(*, actor, entries: QuerySet[CalendarEntry], reason: str = "") -> int:
    """Undo a soft delete, unless the date has an active entry again meanwhile."""
    roles.require(actor, roles.ADMINISTRATORS, "restoring calendar entries")
    count = 0
    with transaction.atomic():
        for entry in entries.filter(deleted=True).select_related("group"):
            if CalendarEntry.objects.filter(group=entry.group, date=entry.date, deleted=False).exists():
                continue
            entry.deleted, entry.deleted_at = False, None
            entry.save(update_fields=["deleted", "deleted_at"])
            audit_record(actor=actor, action="calendar_entry.restore", obj=entry, before={"deleted": True}, after={"deleted": False}, reason=reason)
            count += 1
    return count


# --- public and market holidays -----------------------------------------------------------------


@dataclass(frozen=True)
class HolidayImport:
    group: str
    code: str
    year: int
    created: list[str]
    kept: list[str]  # the date has an active entry already
    skipped_deleted: list[str]  # an operator deleted the date's entry: not brought back

    def __str__(self) -> str:
        return (
            f"{self.group}: {self.code} {self.year}: {len(self.created)} holiday(s) added, "
            f"{len(self.kept)} already there, {len(self.skipped_deleted)} left deleted"
        )


def holidays_lookup(code: str, year: int) -> dict[dt.date, str]:
    """Holidays of a market (NYSE, ECB, XETR...) or a country (DE, US, or DE-BY with a subdivision)."""
    import holidays as holiday_calendars  # some 5 MB in each process that imports calendars; only imports use it

    code = code.strip().upper()
    if not 1900 <= year <= 2200:
        raise ValidationError({"year": f"{year} is out of range (1900-2200)"})
    try:
        if code in holiday_calendars.list_supported_financial():
            found = holiday_calendars.financial_holidays(code, years=year)
        else:
            country, _, subdivision = code.partition("-")
            if country not in holiday_calendars.list_supported_countries():
                raise ValidationError(
                    {"code": f"{code!r} is neither a country code (DE, US, DE-BY) nor a market code (NYSE, ECB, XETR)"}
                )
            found = holiday_calendars.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError as exc:
        raise ValidationError({"code": f"{code!r}: {exc}"}) from None
    return {day: name for day, name in sorted(found.items())}


def holidays_import(*, actor, group: CalendarGroup, code: str, year: int) -> HolidayImport:
    """Add the holidays of ``code`` in ``year`` as calendar entries of ``group`` (idempotent)."""
    roles.require(actor, roles.ADMINISTRATORS, "importing holidays")
    found = holidays_lookup(code, year)
    created, kept, skipped = [], [], []
    with transaction.atomic():
        rows = {}
        for entry in group.entries.filter(date__in=list(found)).order_by("deleted"):
            rows.setdefault(entry.date, entry)
        new = []
        for day, name in found.items():
            entry = rows.get(day)
            if entry is None:
                new.append(CalendarEntry(group=group, date=day, description=f"{name} ({code.strip().upper()})"[:200]))
                created.append(day.isoformat())
            elif entry.deleted:
                skipped.append(day.isoformat())
            else:
                kept.append(day.isoformat())
        CalendarEntry.objects.bulk_create(new)
        result = HolidayImport(group.name, code.strip().upper(), year, created, kept, skipped)
        audit_record(
            actor=actor,
            action="calendar_group.import_holidays",
            obj=group,
            after={"code": result.code, "year": year, "created": created, "kept": kept, "left_deleted": skipped},
        )
    return result


def holidays_import_many(*, actor, groups: Iterable[CalendarGroup], code: str, year: int) -> list[HolidayImport]:
    """The admin action over several groups: all or nothing."""
    with transaction.atomic():
        return [holidays_import(actor=actor, group=group, code=code, year=year) for group in groups]
