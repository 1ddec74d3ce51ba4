from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from monitoring.summaries.currencies import format_amount
from monitoring.summaries.models import MonitoredInterface, ServiceSummary, SummaryEvent, Transaction
from monitoring.summaries.selectors import interface_latest_figures
from monitoring.summaries.services import interface_save
from portal.admin import ReadOnlyAdmin, RoleAdmin

# --- transactions and summary events (issue 5) ----------------------------------------


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["reference", "interface", "status", "amount_display", "currency", "received_at", "completed_at", "updated_at"]
    list_filter = ["interface", "status", "currency", "received_at"]
    search_fields = ["^reference"]
    list_select_related = ["interface"]
    # Millions of rows: no second COUNT(*) for "n of N selected".
    show_full_result_count = False
    fields = ["interface", "reference", "amount_display", "currency", "status", "received_at", "completed_at", "created_at", "updated_at"]
    readonly_fields = fields

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Transaction) -> str:
        return format_amount(obj.amount, obj.currency)


@admin.register(ServiceSummary)
class ServiceSummaryAdmin(ReadOnlyAdmin):
    list_display = ["interval_end", "event", "interface", "task", "interval_start", "emitted_at", "figures", "message_link"]
    list_filter = ["event", "direction", "interface", "task"]
    search_fields = ["task", "interface__code"]
    list_select_related = ["interface", "message"]
    date_hierarchy = "interval_end"
    fields = ["task", "interface", "direction", "event", "interval_start", "interval_end", "emitted_at", "totals_table", "message_link"]
    readonly_fields = fields

    @admin.display(description="figures")
    def figures(self, obj: ServiceSummary) -> str:
        if obj.event == SummaryEvent.HOSTED_BEGIN:
            return "-"
        if not obj.totals:
            return "nothing to report"
        return ", ".join(
            f"{row['currency']}: {row['pending_count']} pending {row['pending_value']}, "
            f"{row['completed_count']} completed {row['completed_value']}, {row['failed_count']} failed"
            for row in obj.totals
        )

    @admin.display(description="totals")
    def totals_table(self, obj: ServiceSummary) -> str:
        note = "the figures are in the End summary" if obj.event == SummaryEvent.HOSTED_BEGIN else ""
        return render_to_string("monitoring/summary_totals.html", {"totals": obj.totals, "empty_note": note})

    @admin.display(description="outbox message")
    def message_link(self, obj: ServiceSummary) -> str:
        if obj.message is None:
            return "-"
        url = reverse("admin:portal_outboundmessage_change", args=[obj.message.pk])
        return format_html('<a href="{}">{}</a>', url, obj.message.status)


@admin.register(MonitoredInterface)
class MonitoredInterfaceAdmin(RoleAdmin):
    list_display = ["code", "name", "direction", "inbound_channel", "outbound_channel", "task_count"]
    list_filter = ["direction"]
    search_fields = ["code", "name", "inbound_channel", "outbound_channel"]
    readonly_fields = ["latest_figures"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(task_count=Count("scheduler_tasks"))

    @admin.display(description="latest summary figures")
    def latest_figures(self, obj) -> str:
        figures = interface_latest_figures(obj) if obj.pk else None
        if figures is None:
            return "no summary yet"
        table = render_to_string("monitoring/summary_totals.html", {"totals": figures.totals})
        return format_html(
            "<p>{} [{} – {}) by task {}</p>{}",
            figures.event,
            figures.interval_start.isoformat(),
            figures.interval_end.isoformat(),
            figures.task,
            mark_safe(table),  # noqa: S308  - rendered by our own autoescaping template
        )

    @admin.display(description="scheduler tasks", ordering="task_count")
    def task_count(self, obj) -> int:
        return obj.task_count

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # transactions and tasks refer to interfaces by code

    def save_model(self, request, obj, form, change) -> None:
        interface_save(actor=request.user, interface=obj)


# --- calendar groups -------------------------------------------------------------------
