from __future__ import annotations

from rest_framework import serializers

from monitoring.models import MonitoredInterface
from portal import clock
from scheduling.models import (
    MIN_INTERVAL_SECONDS,
    CalendarGroup,
    SchedulerTask,
    TaskTransition,
    validate_timezone,
    validate_weekend_days,
)
from scheduling.services import (
    calendar_group_create,
    calendar_group_update,
    interface_save,
    scheduler_task_create,
    scheduler_task_update,
)


def django_validator(check):
    """Run a model validator and answer its message as a DRF error."""

    def validate(value):
        from django.core.exceptions import ValidationError

        try:
            check(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value

    return validate


class InterfaceSerializer(serializers.ModelSerializer):
    class Meta:
        model = MonitoredInterface
        fields = ["id", "code", "name", "direction", "inbound_channel", "outbound_channel"]

    def create(self, validated_data):
        return interface_save(actor=self.context["request"].user, interface=MonitoredInterface(**validated_data))

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return interface_save(actor=self.context["request"].user, interface=instance)


class CalendarEntrySerializer(serializers.Serializer):
    date = serializers.DateField()
    description = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")


class ScheduleEntrySerializer(serializers.Serializer):
    type_code = serializers.CharField(max_length=32)
    open_time = serializers.TimeField()
    close_time = serializers.TimeField()

    def validate(self, data):
        if data["close_time"] <= data["open_time"]:
            raise serializers.ValidationError(
                {"close_time": f"close time {data['close_time']} must be after open time {data['open_time']}"}
            )
        return data


class CalendarGroupSerializer(serializers.ModelSerializer):
    timezone = serializers.CharField(
        max_length=64, required=False, default="UTC", validators=[django_validator(validate_timezone)], help_text="an IANA name"
    )
    weekend_days = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7),
        required=False,
        validators=[django_validator(validate_weekend_days)],
        help_text="ISO weekday numbers, 1 = Monday",
    )
    entries = CalendarEntrySerializer(many=True, required=False, source="active_entries", help_text="non-business dates")
    schedule_entries = ScheduleEntrySerializer(many=True, required=False)

    class Meta:
        model = CalendarGroup
        fields = ["id", "name", "timezone", "weekend_days", "entries", "schedule_entries"]

    def validate_entries(self, entries):
        dates = [entry["date"] for entry in entries]
        twice = sorted({d for d in dates if dates.count(d) > 1})
        if twice:
            raise serializers.ValidationError(f"{twice[0].isoformat()} is listed twice")
        return entries

    def _arguments(self, data: dict) -> dict:
        if "active_entries" in data:
            data["entries"] = data.pop("active_entries")
        return data

    def create(self, validated_data):
        return calendar_group_create(actor=self.context["request"].user, **self._arguments(validated_data))

    def update(self, instance, validated_data):
        return calendar_group_update(actor=self.context["request"].user, group=instance, **self._arguments(validated_data))


class SchedulerTaskSerializer(serializers.ModelSerializer):
    interfaces = serializers.SlugRelatedField(
        many=True, slug_field="code", queryset=MonitoredInterface.objects.all(), required=False, help_text="interface codes"
    )
    calendar_groups = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=CalendarGroup.objects.all(), required=False, help_text="calendar group names"
    )
    interval_seconds = serializers.IntegerField(min_value=MIN_INTERVAL_SECONDS, max_value=366 * 86400)
    suspended_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SchedulerTask
        fields = [
            "id", "name", "subtype", "interfaces", "calendar_groups", "interval_seconds", "enabled",
            "state", "next_timeout_at", "last_fired_at", "last_interval_end_at", "last_error", "last_error_at",
            "consecutive_failures", "suspended_reason", "suspended_by", "suspended_at", "resume_at",
        ]
        read_only_fields = [
            "state", "next_timeout_at", "last_fired_at", "last_interval_end_at", "last_error", "last_error_at",
            "consecutive_failures", "suspended_reason", "suspended_at", "resume_at",
        ]

    def validate(self, data):
        subtype = data.get("subtype", getattr(self.instance, "subtype", None))
        if "interfaces" in data:
            interfaces = data["interfaces"]
        else:
            interfaces = list(self.instance.interfaces.all()) if self.instance else []
        errors = SchedulerTask.interface_errors(subtype, interfaces)
        if errors:
            raise serializers.ValidationError({"interfaces": errors})
        return data

    def create(self, validated_data):
        return scheduler_task_create(actor=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        return scheduler_task_update(actor=self.context["request"].user, task=instance, **validated_data)


class TaskTransitionSerializer(serializers.ModelSerializer):
    task = serializers.SlugRelatedField(slug_field="name", read_only=True)
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = TaskTransition
        fields = ["id", "task", "from_state", "to_state", "event", "at", "actor", "note"]
        read_only_fields = fields


class CommandSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class SuspendSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    resume_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_resume_at(self, value):
        now = clock.now()
        if value is not None and value <= now:
            raise serializers.ValidationError(f"must be later than now ({now.isoformat().replace('+00:00', 'Z')})")
        return value
