from __future__ import annotations

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from monitoring import batch_admin  # noqa: F401  (registers the batch monitor's admins)
from monitoring.currencies import format_amount
from monitoring.models import ServiceSummary, SummaryEvent, Transaction
from portal.admin import ReadOnlyAdmin

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
