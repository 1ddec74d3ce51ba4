"""Admin of cut-offs (Administrators write through the API's services, audited) and their missed-cut-off checks."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from portal import clock
from portal.admin import ReadOnlyAdmin, RoleAdmin, SavedByService
from scheduling.cutoffs.models import CutOff, CutOffCheck
from scheduling.cutoffs.services import FIELDS, cutoff_check, cutoff_create, cutoff_delete, cutoff_update
from scheduling.scheduler.selectors import group_prefetches


class CurrenciesField(forms.CharField):
    """Currency codes as the admin types them: "EUR, USD" (empty: all)."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        return [code.strip().upper() for code in (value or "").split(",") if code.strip()]


class CutOffForm(forms.ModelForm):
    currencies = CurrenciesField(required=False, help_text="ISO 4217 codes, comma separated; empty: all")

    class Meta:
        model = CutOff
        fields = list(FIELDS)

    def clean(self) -> dict:
        data = super().clean()
        probe = CutOff(id=self.instance.pk, **{name: data.get(name) for name in FIELDS if name not in ("interface", "calendar_group")})
        probe.currencies = data.get("currencies") or []
        try:
            cutoff_check(probe)
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(CutOff)
class CutOffAdmin(SavedByService, RoleAdmin):
    form = CutOffForm
    list_display = ["name", "interface", "currency_codes", "time", "calendar_group", "effective_from", "effective_to", "warn_minutes", "next_at"]
    list_filter = ["interface", "calendar_group"]
    search_fields = ["name", "interface__code", "calendar_group__name"]
    list_select_related = ["interface", "calendar_group"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(*group_prefetches("calendar_group__"))

    @admin.display(description="currencies")
    def currency_codes(self, cutoff: CutOff) -> str:
        return ", ".join(cutoff.currencies) or "all"

    @admin.display(description="next cut-off (UTC)")
    def next_at(self, cutoff: CutOff) -> str:
        found = cutoff.next_at(clock.now(), cutoff.calendar_group.calendar())
        return f"{found[1]:%Y-%m-%d %H:%M}" if found else "none ahead"

    def save_related(self, request, form, formsets, change) -> None:
        data = {name: form.cleaned_data.get(name) for name in FIELDS}
        if change:
            cutoff = cutoff_update(actor=request.user, cutoff=form.instance, **data)
        else:
            cutoff = cutoff_create(actor=request.user, **data)
        form.instance.pk = cutoff.pk

    def delete_model(self, request, obj) -> None:
        cutoff_delete(actor=request.user, cutoff=obj)

    def delete_queryset(self, request, queryset) -> None:
        for cutoff in queryset:
            cutoff_delete(actor=request.user, cutoff=cutoff)


@admin.register(CutOffCheck)
class CutOffCheckAdmin(ReadOnlyAdmin):
    """Each cut-off moment the heartbeat looked at, with what was left at it (CUTOFF_MISSED)."""

    list_display = ["cutoff", "at", "checked_at", "missed"]
    list_filter = ["cutoff"]
    list_select_related = ["cutoff"]
