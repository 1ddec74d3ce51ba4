from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.models import Direction, MonitoredInterface
from portal.permissions import IsOperator, ReadOrAdminister
from scheduling.api.serializers import (
    CalendarGroupSerializer,
    CommandSerializer,
    InterfaceSerializer,
    SchedulerTaskSerializer,
    SuspendSerializer,
    TaskTransitionSerializer,
)
from scheduling.models import SchedulerTask, Subtype, TaskState
from scheduling.selectors import calendar_groups_listing, scheduler_tasks_listing
from scheduling.services import (
    TransitionRefused,
    calendar_group_delete,
    scheduler_task_delete,
    scheduler_task_disable,
    scheduler_task_enable,
    scheduler_task_resume,
    scheduler_task_run_now,
    scheduler_task_suspend,
)


def api_errors(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class ServiceSaveMixin:
    """Serializers save through services, which validate again: their errors are 400s too."""

    def perform_create(self, serializer) -> None:
        try:
            serializer.save()
        except DjangoValidationError as exc:
            raise api_errors(exc) from None

    def perform_update(self, serializer) -> None:
        self.perform_create(serializer)


class InterfaceFilter(django_filters.FilterSet):
    code = django_filters.CharFilter()
    direction = django_filters.ChoiceFilter(choices=Direction.choices)

    class Meta:
        model = MonitoredInterface
        fields = ["code", "direction"]


class InterfaceViewSet(
    ServiceSaveMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Monitored interfaces: read by everyone who reads, configured by Administrators."""

    queryset = MonitoredInterface.objects.all()
    serializer_class = InterfaceSerializer
    filterset_class = InterfaceFilter
    permission_classes = [ReadOrAdminister]


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
    enabled = django_filters.BooleanFilter()
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

    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_enable)

    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_disable)

    @action(detail=True, methods=["post"], serializer_class=SchedulerTaskSerializer)
    def suspend(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_suspend, SuspendSerializer)

    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_resume)

    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request: Request, pk=None) -> Response:
        return self._command(request, scheduler_task_run_now)

    @action(detail=True, methods=["get"])
    def transitions(self, request: Request, pk=None) -> Response:
        task = self.get_object()
        page = self.paginate_queryset(task.transitions.all())
        return self.get_paginated_response(TaskTransitionSerializer(page, many=True).data)
