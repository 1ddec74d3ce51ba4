"""Admin of the alerts: episodes (read, acknowledge), channels and rules (Administrators), through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from portal import roles
from portal.admin import ReadOnlyAdmin, RequiredReasonForm, RoleAdmin, SavedByService, action_form
from portal.alerts.channels import target_shown
from portal.alerts.config import (
    alert_rule_check,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    notification_channel_check,
    notification_channel_create,
    notification_channel_delete,
    notification_channel_update,
)
from portal.alerts.models import AlertEpisode, AlertKind, AlertRule, NotificationChannel
from portal.alerts.services import AlertConflict, alert_acknowledge, notification_channel_test


@admin.register(AlertEpisode)
class AlertEpisodeAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "subject", "state", "summary", "opened_at", "acknowledged_by_name", "acknowledged_until", "resolved_at"]
    list_filter = ["state", "kind"]
    search_fields = ["subject", "summary", "=id"]
    date_hierarchy = "opened_at"
    readonly_fields = [
        "kind", "subject", "state", "summary", "opened_at", "tenant", "config", "spool", "interface",
        "acknowledged_by_name", "acknowledged_at", "acknowledge_reason", "acknowledged_until", "resolved_at",
    ]
    exclude = ["acknowledged_by"]
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge (selected open alerts)", permissions=["operate"])
    def acknowledge(self, request, queryset):
        form, page = action_form(
            self, request, queryset, form_class=RequiredReasonForm, action="acknowledge", title="Acknowledge alerts", submit="Acknowledge"
        )
        if page is not None:
            return page
        done, refused = 0, []
        for episode in queryset:
            try:
                alert_acknowledge(actor=request.user, alert=episode, reason=form.cleaned_data["reason"])
                done += 1
            except AlertConflict as exc:
                refused.append(str(exc))
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)
        for why in refused:
            self.message_user(request, why, messages.WARNING)
        return None


class ChannelForm(forms.ModelForm):
    secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="write-only: never shown; leave empty to keep the secret",
    )
    clear_secret = forms.BooleanField(required=False, help_text="remove the secret")

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "target", "secret", "enabled"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # the target as the API shows it: its secrets masked, and kept when sent back so
            self.initial["target"] = target_shown(self.instance.kind, self.instance.target)
        self.initial["secret"] = ""

    def _post_clean(self) -> None:
        """The checks are the service's (``clean``): the model's own would look at the masked target."""

    def clean(self) -> dict:
        data = super().clean()
        target = data.get("target", "")
        if self.instance.pk and target == target_shown(self.instance.kind, self.instance.target):
            target = self.instance.target
        probe = NotificationChannel(id=self.instance.pk, name=data.get("name", ""), kind=data.get("kind", ""), target=target)
        try:
            notification_channel_check(probe)
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(NotificationChannel)
class NotificationChannelAdmin(RoleAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "shown_target", "has_secret", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    actions = ["send_test"]

    def has_administer_permission(self, request) -> bool:
        return roles.can_administer(request.user)

    @admin.display(description="target")
    def shown_target(self, channel: NotificationChannel) -> str:
        return target_shown(channel.kind, channel.target)

    @admin.display(boolean=True, description="secret")
    def has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)

    def save_model(self, request, obj, form, change) -> None:
        data = {name: form.cleaned_data[name] for name in ("name", "kind", "target", "enabled")}
        if form.cleaned_data["secret"] or form.cleaned_data.get("clear_secret"):
            data["secret"] = form.cleaned_data["secret"]
        if change:
            saved = notification_channel_update(actor=request.user, channel=obj, **data)
        else:
            saved = notification_channel_create(actor=request.user, **data)
        obj.pk, obj.name = saved.pk, saved.name

    def delete_model(self, request, obj) -> None:
        notification_channel_delete(actor=request.user, channel=obj)

    def delete_queryset(self, request, queryset) -> None:
        for channel in queryset:
            notification_channel_delete(actor=request.user, channel=channel)

    @admin.action(description="Send a test notification", permissions=["administer"])
    def send_test(self, request, queryset):
        for channel in queryset:
            notification_channel_test(actor=request.user, channel=channel)
        self.message_user(request, f"{queryset.count()} test notification(s) queued.", messages.SUCCESS)


class RuleForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(choices=AlertKind.choices, required=False, widget=forms.CheckboxSelectMultiple, help_text="none: all kinds")

    class Meta:
        model = AlertRule
        fields = ["name", "channels", "kinds", "tenant", "config", "spool", "interface", "repeat_minutes", "escalate_after_minutes", "escalate_to"]

    def clean(self) -> dict:
        data = super().clean()
        probe = AlertRule(
            id=self.instance.pk, name=data.get("name", ""), kinds=list(data.get("kinds") or []),
            repeat_minutes=data.get("repeat_minutes"), escalate_after_minutes=data.get("escalate_after_minutes"),
        )
        try:
            alert_rule_check(probe, list(data.get("channels") or []), list(data.get("escalate_to") or []))
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(SavedByService, RoleAdmin):
    form = RuleForm
    list_display = ["name", "channel_names", "kind_names", "repeat_minutes", "escalate_after_minutes", "escalation_names"]
    search_fields = ["name"]
    filter_horizontal = ["channels", "escalate_to"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("channels", "escalate_to")

    @admin.display(description="channels")
    def channel_names(self, rule: AlertRule) -> str:
        return ", ".join(c.name for c in rule.channels.all())

    @admin.display(description="kinds")
    def kind_names(self, rule: AlertRule) -> str:
        return ", ".join(rule.kinds) or "all"

    @admin.display(description="escalate to")
    def escalation_names(self, rule: AlertRule) -> str:
        return ", ".join(c.name for c in rule.escalate_to.all())

    def save_related(self, request, form, formsets, change) -> None:
        data = dict(form.cleaned_data)
        data["kinds"] = list(data.get("kinds") or [])
        if change:
            rule = alert_rule_update(actor=request.user, rule=form.instance, **data)
        else:
            rule = alert_rule_create(actor=request.user, **data)
        form.instance.pk = rule.pk

    def delete_model(self, request, obj) -> None:
        alert_rule_delete(actor=request.user, rule=obj)

    def delete_queryset(self, request, queryset) -> None:
        for rule in queryset:
            alert_rule_delete(actor=request.user, rule=rule)
