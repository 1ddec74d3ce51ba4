"""API of the workflow jobs: /spools/, /jobs/ with their commands, /scheduler/."""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal import clock
from portal.lib.times import iso_utc
from portal.permissions import IsAdministrator, IsOperator, IsViewer
from scheduling.workflows.models import Job, JobAttempt, JobStatus, SchedulerControl, Spool
from scheduling.workflows.selectors import scheduler_state
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
    workflows_reload,
)


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """An ISO-8601 instant with its offset, answered in UTC."""

    default_error_messages = {"invalid": "{reason}"}

    def to_internal_value(self, data):
        try:
            return clock.parse_instant(str(data))
        except ValueError as exc:
            self.fail("invalid", reason=str(exc))

    def to_representation(self, value):
        return iso_utc(value)


# --- serializers -----------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    spool = serializers.SlugRelatedField(slug_field="name", read_only=True)
    timestamp = InstantField(read_only=True)
    started = InstantField(source="started_at", read_only=True)
    finished = InstantField(source="finished_at", read_only=True)
    created = InstantField(source="created_at", read_only=True)
    updated = InstantField(source="updated_at", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "spool", "generation", "state", "attempt", "type", "status", "timestamp", "comment",
            "stop_flag", "started", "finished", "return_code", "output_tail", "origin", "worker", "created", "updated",
        ]
        read_only_fields = fields


class JobAttemptSerializer(serializers.ModelSerializer):
    claimed = InstantField(source="claimed_at", read_only=True)
    started = InstantField(source="started_at", read_only=True)
    finished = InstantField(source="finished_at", read_only=True)
    workflow_version = serializers.IntegerField(source="workflow_version.number", read_only=True, default=None)

    class Meta:
        model = JobAttempt
        fields = [
            "id", "state", "attempt", "type", "command", "workflow_version", "claimed", "started", "finished",
            "return_code", "output_tail", "worker", "outcome", "status_after",
        ]
        read_only_fields = fields


class SpoolSerializer(serializers.ModelSerializer):
    workflow_version = serializers.IntegerField(source="workflow.number", read_only=True, default=None)
    workflow_checksum = serializers.CharField(source="workflow.checksum", read_only=True, default=None)
    workflow_loaded = InstantField(source="workflow.loaded_at", read_only=True, default=None)
    steps = serializers.JSONField(source="workflow.steps", read_only=True, default=None)

    class Meta:
        model = Spool
        fields = [
            "id", "name", "workflow_file", "enabled", "last_generation",
            "workflow_version", "workflow_checksum", "workflow_loaded", "steps",
        ]
        read_only_fields = ["id", "name", "workflow_file", "last_generation"]


class SchedulerSerializer(serializers.ModelSerializer):
    changed_at = InstantField(read_only=True)
    dispatcher_seen_at = InstantField(read_only=True)

    class Meta:
        model = SchedulerControl
        fields = ["id", "shut_down", "changed_at", "changed_by", "reason", "dispatcher_seen_at"]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class AddJobSerializer(ReasonSerializer):
    spool = serializers.CharField()
    state = serializers.IntegerField(min_value=0)
    timestamp = InstantField(required=False, default=None)
    at = InstantField(required=False, default=None, help_text="the same as timestamp (the CLI's --at)")

    def validate(self, attrs):
        attrs["timestamp"] = attrs["timestamp"] or attrs.pop("at")
        return attrs


class ScheduleSerializer(ReasonSerializer):
    timestamp = InstantField(required=False)
    at = InstantField(required=False, help_text="the same as timestamp")

    def validate(self, attrs):
        attrs["timestamp"] = attrs.get("timestamp") or attrs.get("at")
        if attrs["timestamp"] is None:
            raise serializers.ValidationError({"timestamp": ["This field is required."]})
        return attrs


class CommentSerializer(ReasonSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, help_text="the same as comment (the CLI's TEXT)")

    def validate(self, attrs):
        attrs["comment"] = attrs["comment"] if "comment" in attrs else attrs.get("text")
        if attrs["comment"] is None:
            raise serializers.ValidationError({"comment": ["This field is required."]})
        return attrs


# --- views -----------------------------------------------------------------------


def _reason(request) -> str:
    """The optional reason of an administrator's command; a body that is not an object is a 400."""
    body = ReasonSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data["reason"]


def _invalid(exc: InvalidInput) -> Response:
    return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)


def _conflict(exc: JobConflict) -> Response:
    return Response({"detail": str(exc), "id": exc.job.id, "status": exc.status}, status=status.HTTP_409_CONFLICT)


class JobFilter(django_filters.FilterSet):
    spool = django_filters.CharFilter(method="filter_spool", help_text="spool name; repeat or comma list for several")
    status = django_filters.CharFilter(method="filter_status", help_text="status word; repeat or comma list for several")
    state = django_filters.NumberFilter()
    generation = django_filters.NumberFilter()

    class Meta:
        model = Job
        fields = ["spool", "status", "state", "generation"]

    def _words(self, name: str) -> list[str]:
        # ?status=Error&status=Zombie and ?status=Error,Zombie alike, as the CLI monitor takes them
        return [word.strip() for value in self.data.getlist(name) for word in value.split(",") if word.strip()]

    def filter_spool(self, queryset, name, value):
        return queryset.filter(spool__name__in=self._words("spool"))

    def filter_status(self, queryset, name, value):
        by_lower = {word.lower(): word for word in JobStatus.values}
        words = self._words("status")
        unknown = [word for word in words if word.lower() not in by_lower]
        if unknown:
            raise serializers.ValidationError({"status": [f"unknown status {', '.join(unknown)}; one of {', '.join(JobStatus.values)}"]})
        return queryset.filter(status__in=[by_lower[word.lower()] for word in words])


class JobViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Workflow jobs, every status listed unless filtered, ordered by ID; POST adds a job (`add`)."""

    queryset = Job.objects.select_related("spool").order_by("id")
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_permissions(self):
        if self.action in ("list", "retrieve", "attempts"):
            return [IsViewer()]
        return [IsOperator()]

    def get_serializer_class(self):
        return AddJobSerializer if self.action in ("create", "add") else JobSerializer

    @action(detail=False, methods=["post"], url_path="add", serializer_class=AddJobSerializer)
    def add(self, request):
        """POST /jobs/add/: the same as POST /jobs/, named like the other commands."""
        return self.create(request)

    def create(self, request, *args, **kwargs):
        body = AddJobSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            job = job_add(spool=data["spool"], state=data["state"], at=data["timestamp"], actor=request.user, reason=data["reason"])
        except InvalidInput as exc:
            return _invalid(exc)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    def _command(self, request, service, body_class=ReasonSerializer, **fields):
        job = self.get_object()
        body = body_class(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        args = {name: data.pop(source) for name, source in fields.items()}
        try:
            job = service(job=job, actor=request.user, reason=data.get("reason", ""), **args)
        except JobConflict as exc:
            return _conflict(exc)
        return Response(JobSerializer(job).data)

    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._command(request, job_start)

    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._command(request, job_pause)

    @action(detail=True, methods=["post"])
    def reset(self, request, pk=None):
        return self._command(request, job_reset)

    @action(detail=True, methods=["post"], serializer_class=ScheduleSerializer)
    def schedule(self, request, pk=None):
        return self._command(request, job_schedule, ScheduleSerializer, timestamp="timestamp")

    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        return self._command(request, job_disable)

    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        return self._command(request, job_enable)

    @action(detail=True, methods=["post"], serializer_class=CommentSerializer)
    def comment(self, request, pk=None):
        return self._command(request, job_comment, CommentSerializer, comment="comment")

    @action(detail=True, methods=["get"], serializer_class=JobAttemptSerializer)
    def attempts(self, request, pk=None):
        job = self.get_object()
        rows = job.attempts.select_related("workflow_version").order_by("id")
        return Response(JobAttemptSerializer(rows, many=True).data)


class SpoolFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()

    class Meta:
        model = Spool
        fields = ["name", "enabled"]


class SpoolViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Spools and the workflow in force; Administrators enable, disable and reload them."""

    queryset = Spool.objects.select_related("workflow").order_by("id")
    serializer_class = SpoolSerializer
    filterset_class = SpoolFilter
    http_method_names = ["get", "patch", "post", "head", "options"]

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [IsViewer()]
        return [IsAdministrator()]

    def perform_update(self, serializer):
        if "enabled" in serializer.validated_data:
            spool_set_enabled(spool=serializer.instance, enabled=serializer.validated_data["enabled"], actor=self.request.user)

    @action(detail=True, methods=["post"], serializer_class=ReasonSerializer)
    def reload(self, request, pk=None):
        spool = self.get_object()
        report = workflows_reload(actor=request.user, spools=[spool], reason=_reason(request))
        if report.refused:
            return Response({"workflow_file": [why for _, why in report.refused]}, status=status.HTTP_400_BAD_REQUEST)
        spool.refresh_from_db()
        return Response(SpoolSerializer(spool).data)


class SchedulerViewSet(viewsets.ViewSet):
    """The scheduler switch every dispatcher reads; Administrators shut it down, resume it, reload workflows."""

    serializer_class = SchedulerSerializer

    def get_permissions(self):
        return [IsViewer()] if self.action == "list" else [IsAdministrator()]

    def list(self, request):
        return Response(SchedulerSerializer(scheduler_state()).data)

    @action(detail=False, methods=["post"], serializer_class=ReasonSerializer)
    def shutdown(self, request):
        return Response(SchedulerSerializer(scheduler_shutdown(actor=request.user, reason=_reason(request))).data)

    @action(detail=False, methods=["post"], serializer_class=ReasonSerializer)
    def resume(self, request):
        return Response(SchedulerSerializer(scheduler_resume(actor=request.user, reason=_reason(request))).data)

    @action(detail=False, methods=["post"], serializer_class=ReasonSerializer)
    def reload(self, request):
        report = workflows_reload(actor=request.user, reason=_reason(request))
        body = {
            "loaded": [
                {"spool": r.spool.name, "version": r.version.number, "checksum": r.version.checksum, "changed": r.changed}
                for r in report.loaded
            ],
            "refused": [{"spool": name, "detail": why} for name, why in report.refused],
        }
        # A refused file keeps its spool's workflow in force; the others are loaded all the same.
        return Response(body, status=status.HTTP_400_BAD_REQUEST if report.refused else status.HTTP_200_OK)
