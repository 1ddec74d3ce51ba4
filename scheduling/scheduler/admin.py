"""Admin screens for interfaces, calendar groups and scheduler tasks; actions call the services."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.utils.html import format_html_join

from portal import clock
from portal.admin import (
    ConfigInline,
    ReadOnlyAdmin,
    ReasonForm,
    RequiredReasonForm,
    RoleAdmin,
    SavedByService,
    action_form,
)
from scheduling.scheduler.calendars import (
    calendar_entries_delete,
    calendar_entries_restore,
    calendar_entry_save,
    calendar_group_create,
    calendar_group_delete,
    calendar_group_update,
    holidays_import_many,
)
from scheduling.scheduler.models import (
    ISO_WEEKDAYS,
    CalendarEntry,
    CalendarGroup,
    ScheduleEntry,
    SchedulerTask,
    TaskTransition,
)
from scheduling.scheduler.selectors import group_prefetches
from scheduling.scheduler.services import (
    TransitionRefused,
    scheduler_task_create,
    scheduler_task_delete,
    scheduler_task_disable,
    scheduler_task_enable,
    scheduler_task_resume,
    scheduler_task_run_now,
    scheduler_task_suspend,
    scheduler_task_update,
)


class CalendarGroupForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=[(name, name) for name in sorted(zoneinfo.available_timezones())], initial="UTC")
    weekend_days = forms.TypedMultipleChoiceField(
        choices=ISO_WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = CalendarGroup
        fields = ["name", "timezone", "weekend_days"]


class ScheduleEntryInline(ConfigInline):
    model = ScheduleEntry
    extra = 0
    fields = ["type_code", "open_time", "close_time"]


class CalendarEntryInline(ConfigInline):
    model = CalendarEntry
    extra = 0
    fields = ["date", "description", "deleted"]
    can_delete = False  # entries are soft-deleted: tick "deleted"
    ordering = ["deleted", "-date"]


class ImportHolidaysForm(forms.Form):
    code = forms.CharField(help_text="a country (DE, US, DE-BY) or a market (NYSE, ECB, TAR, XETR)")
    year = forms.IntegerField(min_value=1900, max_value=2200, initial=lambda: clock.now().year)


@admin.register(CalendarGroup)
class CalendarGroupAdmin(SavedByService, RoleAdmin):
    form = CalendarGroupForm
    list_display = ["name", "timezone", "weekend", "opening_hours", "active_entries_count", "task_count"]
    search_fields = ["name"]
    inlines = [ScheduleEntryInline, CalendarEntryInline]
    actions = ["import_holidays"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_entries_count=Count("entries", filter=Q(entries__deleted=False), distinct=True),
                task_count=Count("scheduler_tasks", distinct=True),
            )
            .prefetch_related(*group_prefetches())
        )

    @admin.display(description="weekend")
    def weekend(self, obj) -> str:
        names = dict(ISO_WEEKDAYS)
        return ", ".join(names[day][:3] for day in sorted(obj.weekend_days)) or "-"

    @admin.display(description="opening hours")
    def opening_hours(self, obj) -> str:
        return ", ".join(str(period) for period in obj.schedule_entries.all()) or "whole business day"

    @admin.display(description="non-business dates", ordering="active_entries_count")
    def active_entries_count(self, obj) -> int:
        return obj.active_entries_count

    @admin.display(description="scheduler tasks", ordering="task_count")
    def task_count(self, obj) -> int:
        return obj.task_count

    def save_related(self, request, form, formsets, change) -> None:
        rows = {formset.model: [row.cleaned_data for row in formset.forms if row.cleaned_data] for formset in formsets}
        entries = [
            {"date": row["date"], "description": row.get("description", "")}
            for row in rows.get(CalendarEntry, [])
            if row.get("date") and not row.get("deleted")
        ]
        schedule = [
            {name: row[name] for name in ("type_code", "open_time", "close_time")}
            for row in rows.get(ScheduleEntry, [])
            if not row.get("DELETE")
        ]
        data = {name: form.cleaned_data[name] for name in ("name", "timezone", "weekend_days")}
        try:
            if change:
                group = calendar_group_update(actor=request.user, group=form.instance, entries=entries, schedule_entries=schedule, **data)
            else:
                group = calendar_group_create(actor=request.user, entries=entries, schedule_entries=schedule, **data)
        except ValidationError as exc:  # a race with another edit: the form checked the same rules
            raise PermissionDenied("; ".join(exc.messages)) from None
        form.instance.pk = group.pk

    def delete_model(self, request, obj) -> None:
        calendar_group_delete(actor=request.user, group=obj)

    def delete_queryset(self, request, queryset) -> None:
        for group in queryset:
            calendar_group_delete(actor=request.user, group=group)

    @admin.action(description="Import public or market holidays", permissions=["change"])
    def import_holidays(self, request, queryset):
        form, page = action_form(self, request, queryset, form_class=ImportHolidaysForm, action="import_holidays",
            title="Import holidays into these calendar groups", submit="Import",
        )
        if page is not None:
            return page
        try:
            results = holidays_import_many(
                actor=request.user, groups=queryset, code=form.cleaned_data["code"], year=form.cleaned_data["year"]
            )
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return None
        for result in results:
            self.message_user(request, str(result), messages.SUCCESS)
        return None


class EntryStatusFilter(admin.SimpleListFilter):
    """Active: a coming non-business date; Historic: a past one; Deleted: soft-deleted."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("historic", "Historic"), ("deleted", "Deleted")]

    def queryset(self, request, queryset):
        today = clock.now().date()
        if self.value() == "active":
            return queryset.filter(deleted=False, date__gte=today)
        if self.value() == "historic":
            return queryset.filter(deleted=False, date__lt=today)
        if self.value() == "deleted":
            return queryset.filter(deleted=True)
        return queryset


@admin.register(CalendarEntry)
class CalendarEntryAdmin(RoleAdmin):
    list_display = ["date", "group", "description", "status"]
    list_filter = [EntryStatusFilter, "group"]
    search_fields = ["description", "group__name"]
    date_hierarchy = "date"
    list_select_related = ["group"]
    fields = ["group", "date", "description"]
    actions = ["soft_delete", "restore"]

    @admin.display(description="status")
    def status(self, obj) -> str:
        return obj.status(clock.now().date())

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # soft delete only: the action below

    def save_model(self, request, obj, form, change) -> None:
        calendar_entry_save(actor=request.user, entry=obj)

    @admin.action(description="Delete (soft: keeps the row as history)", permissions=["change"])
    def soft_delete(self, request, queryset):
        count = calendar_entries_delete(actor=request.user, entries=queryset, reason="admin")
        self.message_user(request, f"{count} entr(ies) deleted.", messages.SUCCESS)

    @admin.action(description="Restore deleted entries", permissions=["change"])
    def restore(self, request, queryset):
        count = calendar_entries_restore(actor=request.user, entries=queryset, reason="admin")
        self.message_user(request, f"{count} entr(ies) restored.", messages.SUCCESS)


# --- scheduler tasks ----------------------------------------------------------------------


TASK_CONFIGURATION = ["name", "subtype", "interfaces", "calendar_groups", "interval_seconds", "enabled"]


class SchedulerTaskForm(forms.ModelForm):
    class Meta:
        model = SchedulerTask
        fields = TASK_CONFIGURATION

    def clean(self):
        data = super().clean()
        if "subtype" in data and "interfaces" in data:
            errors = SchedulerTask.interface_errors(data["subtype"], data["interfaces"])
            if errors:
                self.add_error("interfaces", errors)
        return data


class TaskTransitionInline(ConfigInline):
    model = TaskTransition
    fields = ["at", "from_state", "to_state", "event", "actor_name", "note"]
    readonly_fields = fields
    ordering = ["-id"]
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "transitions (latest first)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SuspendForm(RequiredReasonForm):
    resume_at = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-03-02 18:00; empty: until resumed by hand")


@admin.register(SchedulerTask)
class SchedulerTaskAdmin(RoleAdmin):
    form = SchedulerTaskForm
    list_display = [
        "name", "subtype", "state", "enabled", "next_timeout_at", "last_fired_at", "consecutive_failures", "error",
    ]
    list_filter = ["state", "subtype", "enabled", "calendar_groups", "interfaces"]
    search_fields = ["name", "last_error", "suspended_reason"]
    filter_horizontal = ["interfaces", "calendar_groups"]
    readonly_fields = [
        "state", "next_timeout_at", "last_fired_at", "last_interval_end_at", "consecutive_failures", "last_error",
        "last_error_at", "suspended_reason", "suspended_by", "suspended_at", "resume_at", "claimed_at", "claim_expires_at",
    ]
    fieldsets = [
        (None, {"fields": TASK_CONFIGURATION}),
        ("Operation", {"fields": readonly_fields}),
    ]
    inlines = [TaskTransitionInline]
    actions = ["enable", "disable", "suspend", "resume", "run_now"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("suspended_by")

    @admin.display(description="last error")
    def error(self, obj) -> str:
        return obj.last_error[:120]

    def save_model(self, request, obj, form, change) -> None:
        data = {name: form.cleaned_data[name] for name in TASK_CONFIGURATION}
        try:
            if change:
                scheduler_task_update(actor=request.user, task=obj, **data)
            else:
                obj.pk = scheduler_task_create(actor=request.user, **data).pk
        except ValidationError as exc:  # a race with another edit: the form checked the same rules
            raise PermissionDenied("; ".join(exc.messages)) from None
        obj.refresh_from_db()

    def delete_model(self, request, obj) -> None:
        scheduler_task_delete(actor=request.user, task=obj)

    def delete_queryset(self, request, queryset) -> None:
        for task in queryset:
            scheduler_task_delete(actor=request.user, task=task)

    def _each(self, request, queryset, command: str, service, **arguments) -> None:
        done, refused = [], []
        for task in queryset:
            try:
                service(actor=request.user, task=task, **arguments)
                done.append(task.name)
            except (TransitionRefused, ValidationError, PermissionDenied) as exc:
                refused.append(str(exc) if not isinstance(exc, ValidationError) else f"{task.name}: {'; '.join(exc.messages)}")
        if done:
            self.message_user(request, f"{command}: {', '.join(done)}", messages.SUCCESS)
        if refused:
            self.message_user(request, format_html_join("; ", "{}", ((text,) for text in refused)), messages.ERROR)

    def _with_reason(self, request, queryset, action: str, title: str, service):
        form, page = action_form(self, request, queryset, form_class=ReasonForm, action=action, title=title, submit=title)
        if page is not None:
            return page
        self._each(request, queryset, action.replace("_", "-"), service, reason=form.cleaned_data["reason"])
        return None

    @admin.action(description="Enable (start afresh)", permissions=["operate"])
    def enable(self, request, queryset):
        return self._with_reason(request, queryset, "enable", "Enable", scheduler_task_enable)

    @admin.action(description="Disable", permissions=["operate"])
    def disable(self, request, queryset):
        return self._with_reason(request, queryset, "disable", "Disable", scheduler_task_disable)

    @admin.action(description="Suspend (reason, optional resume time)", permissions=["operate"])
    def suspend(self, request, queryset):
        form, page = action_form(self, request, queryset, form_class=SuspendForm, action="suspend", title="Suspend these tasks", submit="Suspend"
        )
        if page is not None:
            return page
        self._each(
            request, queryset, "suspend", scheduler_task_suspend,
            reason=form.cleaned_data["reason"], resume_at=form.cleaned_data["resume_at"],
        )
        return None

    @admin.action(description="Resume", permissions=["operate"])
    def resume(self, request, queryset):
        return self._with_reason(request, queryset, "resume", "Resume", scheduler_task_resume)

    @admin.action(description="Run now", permissions=["operate"])
    def run_now(self, request, queryset):
        return self._with_reason(request, queryset, "run_now", "Run now", scheduler_task_run_now)


@admin.register(TaskTransition)
class TaskTransitionAdmin(ReadOnlyAdmin):
    list_display = ["at", "task", "from_state", "to_state", "event", "actor_name", "note"]
    list_filter = ["event", "to_state", "from_state"]
    search_fields = ["task__name", "note", "actor_name"]
    date_hierarchy = "at"
    list_select_related = ["task"]
