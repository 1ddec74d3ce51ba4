from __future__ import annotations

from django.contrib import admin, messages

from portal import roles
from portal.models import AuditEntry, Heartbeat, OutboundMessage
from portal.services import outbox_retry


class ReaderAdmin(admin.ModelAdmin):
    """The portal's roles decide, as in the API: readers look (a Feeder does not)."""

    def has_module_permission(self, request) -> bool:
        return roles.can_read(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.can_read(request.user)

    def has_operate_permission(self, request) -> bool:
        return roles.can_operate(request.user)


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
