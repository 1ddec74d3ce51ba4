"""The API of calendar groups and scheduler tasks (DOMAIN §2)."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.summaries.models import MonitoredInterface
from portal import clock
from portal.api.fields import BooleanFilter, InstantField, WallTimeField
from portal.api.mixins import JsonTypesMixin, ServiceSaveMixin, api_errors
from portal.permissions import IsOperator, ReadOrAdminister
from scheduling.scheduler.calendars import calendar_group_create, calendar_group_delete, calendar_group_update
from scheduling.scheduler.models import (
    MIN_INTERVAL_SECONDS,
    CalendarGroup,
    SchedulerTask,
    Subtype,
    TaskState,
    TaskTransition,
    validate_timezone,
    validate_weekend_days,
)
from scheduling.scheduler.selectors import calendar_groups_listing, scheduler_tasks_listing
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


def whole_entry(data: dict, *names: str) -> None:
    """A PATCH of a calendar group (partial) still sends whole entries: DRF would let their fields be left out."""
    missing = [name for name in names if name not in data]
    if missing:
        raise serializers.ValidationError({name: ["This field is required."] for name in missing})


class CalendarEntrySerializer(serializers.Serializer):
    date = serializers.DateField()
    description = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")

    def validate(self, data):
        whole_entry(data, "date")
        return data


class ScheduleEntrySerializer(serializers.Serializer):
    type_code = serializers.CharField(max_length=32)
    open_time = WallTimeField()
    close_time = WallTimeField()

    def validate(self, data):
        whole_entry(data, "type_code", "open_time", "close_time")
        if data["close_time"] <= data["open_time"]:
            raise serializers.ValidationError(
                {"close_time": f"close time {data['close_time']} must be after open time {data['open_time']}"}
            )
        return data


class CalendarGroupSerializer(JsonTypesMixin, serializers.ModelSerializer):
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


class SchedulerTaskSerializer(JsonTypesMixin, serializers.ModelSerializer):
    interfaces = serializers.SlugRelatedField(
        many=True, slug_field="code", queryset=MonitoredInterface.objects.all(), required=False, help_text="interface codes"
    )
    calendar_groups = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=CalendarGroup.objects.all(), required=False, help_text="calendar group names"
    )
    interval_seconds = serializers.IntegerField(min_value=MIN_INTERVAL_SECONDS, max_value=366 * 86400)
    suspended_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

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


class CommandSerializer(JsonTypesMixin, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class SuspendSerializer(JsonTypesMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    resume_at = InstantField(required=False, allow_null=True, default=None, help_text="with its offset; empty: until resumed by hand")

    def validate_resume_at(self, value):
        now = clock.now()
        if value is not None and value <= now:
            raise serializers.ValidationError(f"must be later than now ({now.isoformat().replace('+00:00', 'Z')})")
        return value


class TransitionRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    state = serializers.CharField(help_text="the task's state, which the command does not allow")


def task_command(body=CommandSerializer):
    """The schema of a task command: what it takes, the task it answers, and 409 when the task's state refuses it."""
    return extend_schema(request=body, responses={200: SchedulerTaskSerializer, 409: TransitionRefusedSerializer})


class CalendarGroupFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()

    class Meta:
        model = CalendarGroupSerializer.Meta.model
        fields = ["name"]


class CalendarGroupViewSet(ServiceSaveMixin, viewsets.ModelViewSet):
    """Calendar groups with their non-business dates and opening hours, written and read nested."""

    queryset = calendar_groups_listing()
    serializer_class = CalendarGroupSerializer
    filterset_class = CalendarGroupFilter
    permission_classes = [ReadOrAdminister]

    def perform_destroy(self, instance) -> None:
        calendar_group_delete(actor=self.request.user, group=instance)


class SchedulerTaskFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    subtype = django_filters.ChoiceFilter(choices=Subtype.choices)
    state = django_filters.ChoiceFilter(choices=TaskState.choices)
    enabled = BooleanFilter()
    interface = django_filters.CharFilter(field_name="interfaces__code", distinct=True)
    calendar_group = django_filters.CharFilter(field_name="calendar_groups__name", distinct=True)

    class Meta:
        model = SchedulerTask
        fields = ["name", "subtype", "state", "enabled", "interface", "calendar_group"]


OPERATOR_ACTIONS = {"enable", "disable", "suspend", "resume", "run_now"}


class SchedulerTaskViewSet(ServiceSaveMixin, viewsets.ModelViewSet):
    """Scheduler tasks: configuration by Administrators, commands by Operators and Administrators."""

    queryset = scheduler_tasks_listing()
    serializer_class = SchedulerTaskSerializer
    filterset_class = SchedulerTaskFilter

    def get_permissions(self):
        if self.action in OPERATOR_ACTIONS:
            return [IsOperator()]
        return [ReadOrAdminister()]

    def perform_destroy(self, instance) -> None:
        scheduler_task_delete(actor=self.request.user, task=instance)

    def _command(self, request: Request, service, body_serializer=CommandSerializer) -> Response:
        task = self.get_object()
        body = body_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            task = service(actor=request.user, task=task, **body.validated_data)
        except TransitionRefused as exc:
            return Response({"detail": str(exc), "state": exc.state}, status=status.HTTP_409_CONFLICT)
        except DjangoValidationError as exc:
            raise api_errors(exc) from None
        return Response(self.get_serializer(self.get_queryset().get(id=task.id)).data)

    @task_command()
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_enable)

    @task_command()
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_disable)

    @task_command(SuspendSerializer)
    @action(detail=True, methods=["post"], serializer_class=SchedulerTaskSerializer)
    def suspend(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_suspend, SuspendSerializer)

    @task_command()
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_resume)

    @task_command()
    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_run_now)

    @extend_schema(responses=TaskTransitionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def transitions(self, request: Request, pk=None) -> Response:
        task = self.get_object()
        page = self.paginate_queryset(task.transitions.all())
        return self.get_paginated_response(TaskTransitionSerializer(page, many=True).data)
