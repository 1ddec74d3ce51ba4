"""Admin of the workflow jobs: spools, jobs with their commands, attempt history, the scheduler switch.

Imported by ``scheduling/admin.py``. Every change goes through the same services
as the API and the CLI, so permissions, preconditions and audit are shared.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count

from portal import roles
from portal.admin import ReaderAdmin, ReadOnlyAdmin
from scheduling.workflows.models import Job, JobAttempt, SchedulerControl, Spool, WorkflowVersion
from scheduling.workflows.services import (
    InvalidInput,
    JobConflict,
    job_add,
    job_comment,
    job_disable,
    job_enable,
    job_pause,
    job_reset,
    job_schedule,
    job_start,
    scheduler_resume,
    scheduler_shutdown,
    spool_set_enabled,
    workflow_load,
    workflow_read,
    workflows_reload,
)
from scheduling.workflows.workflow import WorkflowError, spool_name_is_valid


def _report(modeladmin: admin.ModelAdmin, request, done: int, problems: list[str], verb: str) -> None:
    if done:
        modeladmin.message_user(request, f"{verb}: {done} job(s).", messages.SUCCESS)
    for problem in problems[:20]:
        modeladmin.message_user(request, problem, messages.ERROR)


def _job_action(service, verb: str, description: str):
    def run(modeladmin, request, queryset):
        done, problems = 0, []
        for job in queryset.order_by("id"):
            try:
                service(job=job, actor=request.user, reason=f"admin: {verb}")
                done += 1
            except (JobConflict, PermissionDenied) as exc:
                problems.append(str(exc))
        _report(modeladmin, request, done, problems, verb)

    run.__name__ = f"job_{verb}"
    return admin.action(description=description)(run)


def _reload(modeladmin: admin.ModelAdmin, request, spools) -> None:
    try:
        report = workflows_reload(actor=request.user, spools=spools, reason="admin: reload")
    except PermissionDenied as exc:
        modeladmin.message_user(request, str(exc), messages.ERROR)
        return
    for loaded in report.loaded:
        modeladmin.message_user(request, str(loaded), messages.SUCCESS)
    for name, why in report.refused:
        modeladmin.message_user(request, f"spool {name}: {why}", messages.ERROR)


# --- spools --------------------------------------------------------------------


class SpoolForm(forms.ModelForm):
    class Meta:
        model = Spool
        fields = ["name", "workflow_file", "enabled"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if not spool_name_is_valid(name):
            raise forms.ValidationError("letters, digits, '.', '_' and '-' only, not '.' or '-' first")
        return name

    def clean_workflow_file(self):
        # Shown on the form; workflow_load checks again when it saves.
        path = self.cleaned_data["workflow_file"]
        try:
            workflow_read(path=path)  # as workflow_load reads it, so the form refuses no file the load takes
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from None
        except WorkflowError as exc:
            raise forms.ValidationError([str(problem) for problem in exc.problems]) from None
        return path


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    fields = ["number", "source", "checksum", "loaded_at", "loaded_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Spool)
class SpoolAdmin(ReaderAdmin):
    form = SpoolForm
    list_display = ["name", "workflow_file", "enabled", "version", "checksum", "loaded_at", "last_generation", "job_count"]
    list_filter = ["enabled"]
    search_fields = ["name", "workflow_file"]
    list_select_related = ["workflow"]
    readonly_fields = ["workflow", "last_generation", "created_at"]
    inlines = [WorkflowVersionInline]
    actions = ["reload_workflows"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(jobs_total=Count("jobs"))

    @admin.display(description="version")
    def version(self, spool: Spool):
        return spool.workflow.number if spool.workflow else None

    @admin.display(description="checksum")
    def checksum(self, spool: Spool):
        return spool.workflow.checksum[:12] if spool.workflow else ""

    @admin.display(description="loaded")
    def loaded_at(self, spool: Spool):
        return spool.workflow.loaded_at if spool.workflow else None

    @admin.display(description="jobs", ordering="jobs_total")
    def job_count(self, spool: Spool) -> int:
        return spool.jobs_total

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def has_add_permission(self, request) -> bool:
        return roles.can_administer(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.can_administer(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # jobs keep their spool; disable it instead

    def save_model(self, request, obj, form, change):
        try:
            if not change or "workflow_file" in form.changed_data:
                report = workflow_load(spool_name=obj.name, path=obj.workflow_file, actor=request.user, reason="admin")
                obj.pk = report.spool.pk
            if change and "enabled" in form.changed_data or not change and not obj.enabled:
                spool_set_enabled(spool=Spool.objects.get(pk=obj.pk), enabled=obj.enabled, actor=request.user, reason="admin")
        except (WorkflowError, InvalidInput, PermissionDenied) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.refresh_from_db()

    @admin.action(description="Load or reload the workflow file")
    def reload_workflows(self, request, queryset):
        _reload(self, request, queryset)


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    list_display = ["spool", "number", "source", "checksum", "loaded_at", "loaded_by"]
    list_filter = ["spool"]
    list_select_related = ["spool"]


# --- jobs ------------------------------------------------------------------------


class AddJobForm(forms.ModelForm):
    """`add`: the spool, the step and an optional time; the rest follows from the workflow."""

    timestamp = forms.DateTimeField(required=False, help_text="empty: now")

    class Meta:
        model = Job
        fields = ["spool", "state", "timestamp"]

    def clean(self):
        data = super().clean()
        spool, state = data.get("spool"), data.get("state")
        if spool and state is not None and (spool.workflow is None or spool.workflow.workflow.step(state) is None):
            self.add_error("state", f"spool {spool.name} has no step {state}")
        return data


class ChangeJobForm(forms.ModelForm):
    """Editing the Timestamp reschedules (the `schedule` command); the comment is the `comment` command."""

    class Meta:
        model = Job
        fields = ["timestamp", "comment"]

    def clean_timestamp(self):
        value = self.cleaned_data["timestamp"]
        if "timestamp" in self.changed_data and not self.instance.allows("schedule"):
            raise forms.ValidationError(f"a {self.instance.status} job cannot be rescheduled")
        return value


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    fields = ["attempt", "state", "type", "claimed_at", "started_at", "finished_at", "return_code", "outcome", "worker"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReaderAdmin):
    list_display = ["id", "spool", "generation_shown", "state", "attempt", "type", "status", "timestamp", "comment"]
    list_display_links = ["id"]
    list_filter = ["status", "spool"]
    search_fields = ["=id", "spool__name", "comment", "type"]
    list_select_related = ["spool"]
    show_full_result_count = False  # no second COUNT over a table that keeps every job
    inlines = [JobAttemptInline]
    actions = [
        _job_action(job_start, "start", "Start (Waiting, now)"),
        _job_action(job_pause, "pause", "Pause"),
        _job_action(job_reset, "reset", "Reset (the step again from attempt 1)"),
        _job_action(job_disable, "disable", "Disable"),
        _job_action(job_enable, "enable", "Enable (to Pause)"),
    ]
    CHANGE_READONLY = [
        "spool", "generation", "state", "attempt", "type", "status", "stop_flag", "origin", "created_at",
        "started_at", "finished_at", "return_code", "output_tail", "worker", "lease_until",
    ]

    @admin.display(description="generation", ordering="generation")
    def generation_shown(self, job: Job) -> str:
        return f"{job.generation:06d}"  # six digits, as the console, the CLI and the step commands show it

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ChangeJobForm if obj else AddJobForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["spool", "state", "timestamp"]
        return ["timestamp", "comment", *self.CHANGE_READONLY]

    def get_readonly_fields(self, request, obj=None):
        return self.CHANGE_READONLY if obj else []

    def has_add_permission(self, request) -> bool:
        return roles.can_operate(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.can_operate(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # every job stays listed

    def save_model(self, request, obj, form, change):
        try:
            if not change:
                job = job_add(spool=obj.spool, state=obj.state, at=form.cleaned_data.get("timestamp"), actor=request.user, reason="admin")
                obj.pk = job.pk
            else:
                if "timestamp" in form.changed_data:
                    job_schedule(job=obj.pk, timestamp=obj.timestamp, actor=request.user, reason="admin")
                if "comment" in form.changed_data:
                    job_comment(job=obj.pk, comment=obj.comment, actor=request.user, reason="admin")
        except (JobConflict, InvalidInput, PermissionDenied) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            if not change:
                return
        obj.refresh_from_db()


@admin.register(JobAttempt)
class JobAttemptAdmin(ReadOnlyAdmin):
    list_display = ["job", "state", "attempt", "type", "claimed_at", "started_at", "finished_at", "return_code", "outcome", "worker"]
    list_filter = ["job__spool", "status_after"]
    search_fields = ["=job__id", "outcome", "worker"]
    list_select_related = ["job__spool"]
    show_full_result_count = False


# --- the scheduler switch ---------------------------------------------------------


@admin.register(SchedulerControl)
class SchedulerControlAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "shut_down", "changed_at", "changed_by", "reason", "dispatcher_seen_at"]
    actions = ["shutdown", "resume", "reload"]

    def changelist_view(self, request, extra_context=None):
        SchedulerControl.load()  # the one row to act on
        return super().changelist_view(request, extra_context)

    def _switch(self, request, service, done: str) -> None:
        try:
            service(actor=request.user, reason="admin")
            self.message_user(request, done, messages.SUCCESS)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)

    @admin.action(description="Shut the scheduler down (running jobs finish)")
    def shutdown(self, request, queryset):
        self._switch(request, scheduler_shutdown, "Scheduler shut down: no job is started.")

    @admin.action(description="Resume the scheduler")
    def resume(self, request, queryset):
        self._switch(request, scheduler_resume, "Scheduler running.")

    @admin.action(description="Reload every spool's workflow file")
    def reload(self, request, queryset):
        _reload(self, request, Spool.objects.all())
