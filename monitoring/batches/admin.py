"""Admin of the batch monitor: configs with their sources, windows, held arrivals and files.

Rights follow the portal's roles: readers look, Operators fail windows, release held
arrivals and scan, Administrators change configs. Every change goes through the services.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet

from monitoring.batches import selectors, services
from monitoring.batches.models import AlertState, BatchConfig, BatchFile, BatchSource, BatchWindow, HeldArrival
from monitoring.batches.scan import batch_scan_now
from portal.admin import ConfigInline, ReadOnlyAdmin, RequiredReasonForm, RoleAdmin, SavedByService, action_form

# --- configs ------------------------------------------------------------------------------


class SourceFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        names = [
            form.cleaned_data["name"]
            for form in self.forms
            if form.cleaned_data.get("name") and not form.cleaned_data.get("DELETE")
        ]
        if not names:
            raise ValidationError("A config expects at least one source.")
        if len(set(names)) != len(names):
            raise ValidationError("A source is listed twice.")
        errors = services.batch_config_conflicts(
            tenant=self.instance.tenant, name=self.instance.name, sources=names, exclude_id=self.instance.pk
        )
        source_errors = [e.message for e in errors if e.field == "sources"]
        if source_errors:
            raise ValidationError(source_errors)


class BatchSourceInline(ConfigInline):
    model = BatchSource
    formset = SourceFormSet
    fields = ["name"]
    extra = 1


@admin.register(BatchConfig)
class BatchConfigAdmin(SavedByService, RoleAdmin):
    list_display = [
        "name", "tenant", "active", "exception_check", "window_hours", "max_wait_hours", "realert_minutes",
        "interface", "source_names", "latest_window_status", "alert_state",
    ]
    list_filter = ["tenant", "active", "exception_check", "interface", "alert__state"]
    search_fields = ["name", "tenant", "sources__name", "target_app", "target_workflow"]
    list_select_related = ["interface", "alert", "latest_window"]
    inlines = [BatchSourceInline]
    fields = [
        "tenant", "name", "description", "window_hours", "max_wait_hours", "target_app", "target_workflow",
        "active", "exception_check", "realert_minutes", "risk_tolerance_minutes", "interface", "usual_arrivals",
    ]
    readonly_fields = ["usual_arrivals"]
    actions = ["scan_now"]

    def get_queryset(self, request) -> QuerySet[BatchConfig]:
        return super().get_queryset(request).prefetch_related("sources")

    @admin.display(description="sources")
    def source_names(self, config: BatchConfig) -> str:
        return ", ".join(sorted(s.name for s in config.sources.all()))

    @admin.display(description="latest window")
    def latest_window_status(self, config: BatchConfig) -> str:
        window = config.latest_window
        return f"{window.status} {window.window_start:%Y-%m-%d %H:%M}" if window else "-"

    @admin.display(description="alert", ordering="alert__state")
    def alert_state(self, config: BatchConfig) -> str:
        alert = getattr(config, "alert", None)
        return alert.state if alert is not None else AlertState.NONE

    def save_related(self, request, form, formsets, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in self.fields if name not in self.readonly_fields}
        sources = [
            row.cleaned_data["name"]
            for formset in formsets
            for row in formset.forms
            if row.cleaned_data.get("name") and not row.cleaned_data.get("DELETE")
        ]
        try:
            if change:
                config = services.batch_config_update(actor=request.user, config_id=form.instance.pk, fields=fields, sources=sources)
            else:
                config = services.batch_config_create(actor=request.user, fields=fields, sources=sources)
        except services.BatchInputError as exc:  # a race with another edit: the form checked the same rules
            raise PermissionDenied(str(exc)) from None
        form.instance.pk = config.pk

    def delete_model(self, request, obj: BatchConfig) -> None:
        services.batch_config_delete(actor=request.user, config_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for config in queryset:
            services.batch_config_delete(actor=request.user, config_id=config.pk)

    @admin.action(description="Scan now (selected configs)", permissions=["operate"])
    def scan_now(self, request, queryset) -> None:
        report = batch_scan_now(actor=request.user, config_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Scan: {report}", messages.SUCCESS)


# --- windows ---------------------------------------------------------------------------------


class AlertStateFilter(admin.SimpleListFilter):
    title = "alert state"
    parameter_name = "alert_state"

    def lookups(self, request, model_admin):
        return AlertState.choices

    def queryset(self, request, queryset):
        return queryset.filter(alert_state=self.value()) if self.value() else queryset


@admin.register(BatchWindow)
class BatchWindowAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "config", "tenant", "status", "window_start", "window_end", "sla", "counts", "missing",
        "trigger_status", "alert",
    ]
    list_filter = ["status", "config__tenant", ("config", admin.RelatedOnlyFieldListFilter), AlertStateFilter, "trigger_status"]
    search_fields = ["config__name", "config__tenant", "=id"]
    date_hierarchy = "window_start"
    readonly_fields = [
        "config", "status", "extract_timestamp", "window_start", "window_end", "sla", "expected_count",
        "received_count", "missing", "max_wait_hours", "trigger_status", "opened_at", "completed_at", "failed_at",
        "failed_by", "fail_reason",
    ]
    actions = ["fail_windows"]

    def get_queryset(self, request) -> QuerySet[BatchWindow]:
        return selectors.windows_for_listing()

    @admin.display(ordering="config__tenant")
    def tenant(self, window: BatchWindow) -> str:
        return window.config.tenant

    @admin.display(description="received")
    def counts(self, window: BatchWindow) -> str:
        return f"{window.received_count}/{window.expected_count}"

    @admin.display(description="missing sources")
    def missing(self, window: BatchWindow) -> str:
        return ", ".join(selectors.window_missing_sources(window)) or "-"

    @admin.display(description="alert state", ordering="alert_state")
    def alert(self, window: BatchWindow) -> str:
        return window.alert_state

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Fail window (with a reason)", permissions=["operate"])
    def fail_windows(self, request, queryset):
        form, page = action_form(
            self, request, queryset, form_class=RequiredReasonForm, action="fail_windows", title="Fail these windows?",
            submit="Fail windows",
        )
        if page is not None:
            return page
        reason = form.cleaned_data["reason"]
        for window in queryset:
            try:
                outcome = services.batch_window_fail(window_id=window.id, actor=request.user, reason=reason)
            except services.WindowStateError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(
                request, f"Window {window.id} FAILED; {outcome.applied} held arrival(s) applied.", messages.SUCCESS
            )
        return None


# --- held arrivals and files ---------------------------------------------------------------


@admin.register(HeldArrival)
class HeldArrivalAdmin(ReadOnlyAdmin):
    list_display = ["id", "config", "source_name", "extract_timestamp", "received_at", "blocked_by"]
    list_filter = ["config__tenant", ("config", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["source_name", "config__name"]
    actions = ["release"]

    def get_queryset(self, request) -> QuerySet[BatchFile]:
        return selectors.held_arrivals(HeldArrival)

    @admin.display(description="waits behind")
    def blocked_by(self, file: BatchFile) -> str:
        blocker = selectors.held_blocker(file)
        span = f"{blocker['window_start']:%Y-%m-%d %H:%M} to {blocker['window_end']:%Y-%m-%d %H:%M}"
        return f"window {blocker['window_id']} ({span}, OPEN)" if blocker["window_id"] else f"unopened window {span}"

    @admin.action(description="Release: fail the window that blocks them (with a reason)", permissions=["operate"])
    def release(self, request, queryset):
        form, page = action_form(
            self, request, queryset, form_class=RequiredReasonForm, action="release",
            title="Fail the windows that hold these arrivals back?", submit="Fail blocking windows",
        )
        if page is not None:
            return page
        reason = form.cleaned_data["reason"]
        for file in queryset:
            if not BatchFile.objects.filter(id=file.id, held=True).exists():
                continue  # released by an earlier one of the selection
            outcome = services.held_arrival_release(file_id=file.id, actor=request.user, reason=reason)
            self.message_user(
                request,
                f"Window {outcome.window.id} FAILED; {outcome.applied} held arrival(s) applied, {outcome.still_held} still held.",
                messages.SUCCESS,
            )
        return None


@admin.register(BatchFile)
class BatchFileAdmin(ReadOnlyAdmin):
    list_display = ["id", "config", "source_name", "extract_timestamp", "received_at", "window", "exception", "held", "counted"]
    list_filter = ["exception", "held", "counted", "config__tenant", ("config", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["source_name", "config__name", "=window__id"]
    list_select_related = ["config", "window", "window__config"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in BatchFile._meta.fields]
