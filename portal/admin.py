from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.shortcuts import render

from portal import roles
from portal.models import AuditEntry, Heartbeat, OutboundMessage, OutboxLane
from portal.services import outbox_retry, user_access_changed, user_access_removed, user_access_snapshot


class ReaderAdmin(admin.ModelAdmin):
    """The portal's roles decide, as in the API: readers look (a Feeder does not)."""

    def has_module_permission(self, request) -> bool:
        return roles.can_read(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.can_read(request.user)

    def has_operate_permission(self, request) -> bool:
        return roles.can_operate(request.user)


class RoleAdmin(ReaderAdmin):
    """The portal's roles decide: readers look, Administrators configure, Operators run commands."""

    def has_add_permission(self, request) -> bool:
        return roles.can_administer(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.can_administer(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return roles.can_administer(request.user)


class SavedByService:
    """An admin whose object is saved with its inline rows by a service in ``save_related`` (the one the API
    calls), so the audit, the validation and the follow-ups are the same on every surface."""

    def save_model(self, request, obj, form, change) -> None:
        """Nothing yet: save_related saves the object with its rows."""

    def construct_change_message(self, request, form, formsets, add=False):
        # The inline formsets were not saved by Django (the service saved the rows); the audit log has the change.
        return super().construct_change_message(request, form, None, add)


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="kept in the audit log")


class RequiredReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="required: kept in the audit log")


def action_form(modeladmin: admin.ModelAdmin, request, queryset, *, form_class, action: str, title: str, submit: str):
    """The one intermediate page of an admin action that needs input (a reason, a time...).

    Returns (form, None) once submitted and valid, else (None, the page to show).
    """
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        return form, None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title, "form": form, "queryset": queryset, "action": action, "submit": submit, "opts": modeladmin.model._meta,
    }
    return None, render(request, "admin/portal/action_form.html", context)


class ConfigInline(admin.TabularInline):
    """Inline rows of a configuration screen: readers look, Administrators change."""

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.can_read(request.user)

    def has_add_permission(self, request, obj=None) -> bool:
        return roles.can_administer(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return roles.can_administer(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.can_delete and roles.can_administer(request.user)


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReaderAdmin):
    list_display = ["id", "kind", "dedupe_key", "status", "attempts", "created_at", "next_attempt_at", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["dedupe_key", "=uuid"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in OutboundMessage._meta.fields]
    actions = ["publish_again"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Publish again (FAILED messages)", permissions=["operate"])
    def publish_again(self, request, queryset):
        count = outbox_retry(messages=queryset, actor=request.user, reason="admin: publish again")
        self.message_user(request, f"{count} message(s) queued again.", messages.SUCCESS)


class ReadOnlyAdmin(ReaderAdmin):
    """Logs, history and what systems feed: the admin shows, never edits."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboxLane)
class OutboxLaneAdmin(ReadOnlyAdmin):
    """Which lane waits after a failed batch, until when, and why (DOMAIN §4's order)."""

    list_display = ["name", "failures", "next_attempt_at", "lease_until", "last_error"]
    list_filter = ["failures"]
    search_fields = ["name"]
    readonly_fields = [f.name for f in OutboxLane._meta.fields]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_repr", "reason"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_name", "object_repr", "object_id", "reason"]
    date_hierarchy = "at"
    list_select_related = ["actor"]


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["last_tick_at", "last_event", "ticks"]


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """Users and their roles, for Administrators; giving or taking a role is a configuration change, audited.

    Only a superuser makes superusers or hands out Django's own permissions: the
    portal's roles are the groups.
    """

    def has_module_permission(self, request) -> bool:
        return roles.can_administer(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.can_administer(request.user)

    def has_add_permission(self, request) -> bool:
        return roles.can_administer(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return roles.can_administer(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += ["is_superuser", "user_permissions"]
        return fields

    def save_model(self, request, obj, form, change) -> None:
        # The roles are saved with the form's many-to-many data (save_related): audit after it.
        request._user_access_before = user_access_snapshot(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        user_access_changed(actor=request.user, user=form.instance, before=request._user_access_before)

    def delete_model(self, request, obj) -> None:
        user_access_removed(actor=request.user, user=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for user in queryset:
            user_access_removed(actor=request.user, user=user)
        super().delete_queryset(request, queryset)
