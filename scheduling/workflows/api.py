"""API of the workflow jobs: /spools/, /jobs/ with their commands, /scheduler/."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api.fields import BooleanFilter, InstantField, IntegerFilter
from portal.api.mixins import JsonTypesMixin
from portal.permissions import IsAdministrator, IsOperator, IsViewer
from scheduling.workflows.models import Job, JobAttempt, JobStatus, SchedulerControl, Spool
from scheduling.workflows.selectors import job_gates, jobs_with_gates, scheduler_state
from scheduling.workflows.services import (
    SIMPLE_COMMANDS,
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
    spool_jobs_command,
    spool_set_enabled,
    workflows_reload,
)

# --- serializers -----------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    spool = serializers.SlugRelatedField(slug_field="name", read_only=True)
    timestamp = InstantField(read_only=True)
    started = InstantField(source="started_at", read_only=True, allow_null=True)
    finished = InstantField(source="finished_at", read_only=True, allow_null=True)
    created = InstantField(source="created_at", read_only=True)
    updated = InstantField(source="updated_at", read_only=True)
    waiting_for = serializers.SerializerMethodField(help_text="the gate that holds a due Waiting job (DOMAIN §5); null otherwise")

    class Meta:
        model = Job
        fields = [
            "id", "spool", "generation", "state", "attempt", "type", "status", "timestamp", "comment",
            "stop_flag", "started", "finished", "return_code", "output_tail", "origin", "worker", "created", "updated",
            "waiting_for",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_waiting_for(self, job: Job) -> str | None:
        # The gates are read once per answer (a page of jobs shares them), not once per job.
        context = self.context
        if "job_gates" not in context:
            context["job_gates"] = job_gates()
        return context["job_gates"].waiting_for(job)


class JobAttemptSerializer(serializers.ModelSerializer):
    claimed = InstantField(source="claimed_at", read_only=True)
    started = InstantField(source="started_at", read_only=True, allow_null=True)
    finished = InstantField(source="finished_at", read_only=True, allow_null=True)
    workflow_version = serializers.IntegerField(source="workflow_version.number", read_only=True, default=None, allow_null=True)

    class Meta:
        model = JobAttempt
        fields = [
            "id", "state", "attempt", "type", "command", "workflow_version", "claimed", "started", "finished",
            "return_code", "output_tail", "worker", "outcome", "status_after",
        ]
        read_only_fields = fields


class SpoolSerializer(JsonTypesMixin, serializers.ModelSerializer):
    workflow_version = serializers.IntegerField(source="workflow.number", read_only=True, default=None, allow_null=True)
    workflow_checksum = serializers.CharField(source="workflow.checksum", read_only=True, default=None, allow_null=True)
    workflow_loaded = InstantField(source="workflow.loaded_at", read_only=True, default=None, allow_null=True)
    steps = serializers.ListField(
        child=serializers.DictField(), source="workflow.steps", read_only=True, default=None, allow_null=True,
        help_text="the steps of the workflow in force, as loaded",
    )

    class Meta:
        model = Spool
        fields = [
            "id", "name", "workflow_file", "enabled", "last_generation",
            "workflow_version", "workflow_checksum", "workflow_loaded", "steps",
        ]
        read_only_fields = ["id", "name", "workflow_file", "last_generation"]


@extend_schema_serializer(many=False)  # GET /scheduler/ answers the one switch, not a list
class SchedulerSerializer(serializers.ModelSerializer):
    changed_at = InstantField(read_only=True, allow_null=True)
    dispatcher_seen_at = InstantField(read_only=True, allow_null=True)

    class Meta:
        model = SchedulerControl
        fields = ["id", "shut_down", "changed_at", "changed_by", "reason", "dispatcher_seen_at"]
        read_only_fields = fields


class ReasonSerializer(JsonTypesMixin, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class AddJobSerializer(ReasonSerializer):
    spool = serializers.CharField()
    state = serializers.IntegerField(min_value=0)
    timestamp = InstantField(required=False, default=None)
    at = InstantField(required=False, default=None, help_text="the same as timestamp (the CLI's --at)")

    def validate(self, attrs):
        attrs["timestamp"] = attrs["timestamp"] or attrs.pop("at")
        return attrs


class WhenSerializer(ReasonSerializer):
    """start and reset: Waiting at ``timestamp`` instead of now (DOMAIN §5)."""

    timestamp = InstantField(required=False, default=None)
    at = InstantField(required=False, default=None, help_text="the same as timestamp (the CLI's --at)")

    def validate(self, attrs):
        attrs["at"] = attrs.pop("timestamp") or attrs["at"]
        return attrs


class SpoolCommandSerializer(WhenSerializer):
    command = serializers.ChoiceField(choices=list(SIMPLE_COMMANDS))
    generation = serializers.IntegerField(required=False, default=None, min_value=1, help_text="only this generation's jobs")


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


class JobConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="the job's status, which the command does not allow")


class ReloadedSpoolSerializer(serializers.Serializer):
    spool = serializers.CharField()
    version = serializers.IntegerField()
    checksum = serializers.CharField()
    changed = serializers.BooleanField()


class RefusedSpoolSerializer(serializers.Serializer):
    spool = serializers.CharField()
    detail = serializers.CharField()


class ReloadReportSerializer(serializers.Serializer):
    loaded = ReloadedSpoolSerializer(many=True)
    refused = RefusedSpoolSerializer(many=True)


class SpoolCommandReportSerializer(serializers.Serializer):
    """What a command on a spool's jobs did: the jobs changed, those refused with their status."""

    command = serializers.CharField()
    changed = serializers.ListField(child=serializers.IntegerField())
    refused = serializers.ListField(child=serializers.DictField())
    statuses = serializers.DictField(child=serializers.IntegerField())
    detail = serializers.CharField(required=False)


def job_command(body=ReasonSerializer):
    """The schema of a job command: what it takes, the job it answers, and 409 when the job's status refuses it."""
    return extend_schema(request=body, responses={200: JobSerializer, 409: JobConflictSerializer})


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
    state = IntegerFilter()
    generation = IntegerFilter()

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

    queryset = jobs_with_gates().order_by("id")
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_permissions(self):
        if self.action in ("list", "retrieve", "attempts"):
            return [IsViewer()]
        return [IsOperator()]

    def get_serializer_class(self):
        return AddJobSerializer if self.action in ("create", "add") else JobSerializer

    @extend_schema(request=AddJobSerializer, responses={201: JobSerializer})
    @action(detail=False, methods=["post"], url_path="add", serializer_class=AddJobSerializer)
    def add(self, request):
        """POST /jobs/add/: the same as POST /jobs/, named like the other commands."""
        return self.create(request)

    @extend_schema(request=AddJobSerializer, responses={201: JobSerializer})
    def create(self, request, *args, **kwargs):
        body = AddJobSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            job = job_add(spool=data["spool"], state=data["state"], at=data["timestamp"], actor=request.user, reason=data["reason"])
        except InvalidInput as exc:
            return _invalid(exc)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    def _command(self, request, service, body_class=ReasonSerializer, note=None, **fields):
        job = self.get_object()
        body = body_class(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        args = {name: data.pop(source) for name, source in fields.items()}
        try:
            job = service(job=job, actor=request.user, reason=data.get("reason", ""), **args)
        except JobConflict as exc:
            return _conflict(exc)
        data = JobSerializer(self.get_queryset().get(id=job.id), context=self.get_serializer_context()).data
        return Response({**data, "note": note(job)} if note else data)

    @job_command(WhenSerializer)
    @action(detail=True, methods=["post"], serializer_class=WhenSerializer)
    def start(self, request, pk=None):
        """Waiting now, or at ``timestamp``."""
        return self._command(request, job_start, WhenSerializer, at="at")

    @job_command()
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._command(request, job_pause)

    @job_command(WhenSerializer)
    @action(detail=True, methods=["post"], serializer_class=WhenSerializer)
    def reset(self, request, pk=None):
        """Error or Zombie: Waiting at attempt 1, now or at ``timestamp``."""
        return self._command(request, job_reset, WhenSerializer, at="at")

    @job_command(ScheduleSerializer)
    @action(detail=True, methods=["post"], serializer_class=ScheduleSerializer)
    def schedule(self, request, pk=None):
        """A new timestamp, the status unchanged; ``note`` says what a job that is not Waiting needs to run then."""
        return self._command(request, job_schedule, ScheduleSerializer, note=Job.schedule_note, timestamp="timestamp")

    @job_command()
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        return self._command(request, job_disable)

    @job_command()
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        return self._command(request, job_enable)

    @job_command(CommentSerializer)
    @action(detail=True, methods=["post"], serializer_class=CommentSerializer)
    def comment(self, request, pk=None):
        return self._command(request, job_comment, CommentSerializer, comment="comment")

    @extend_schema(responses=JobAttemptSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=JobAttemptSerializer, pagination_class=None)
    def attempts(self, request, pk=None):
        job = self.get_object()
        rows = job.attempts.select_related("workflow_version").order_by("id")
        return Response(JobAttemptSerializer(rows, many=True).data)


class SpoolFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    enabled = BooleanFilter()

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
        if self.action == "jobs_command":
            return [IsOperator()]
        return [IsAdministrator()]

    def perform_update(self, serializer):
        if "enabled" in serializer.validated_data:
            spool_set_enabled(spool=serializer.instance, enabled=serializer.validated_data["enabled"], actor=self.request.user)

    @extend_schema(request=SpoolCommandSerializer, responses={200: SpoolCommandReportSerializer, 409: SpoolCommandReportSerializer})
    @action(detail=True, methods=["post"], url_path="command", serializer_class=SpoolCommandSerializer)
    def jobs_command(self, request, pk=None):
        """``command`` (start|pause|reset|disable|enable) for the spool's jobs whose status allows it, or one
        ``generation``'s, as the CLI's ``jobs COMMAND SPOOL [GENERATION]`` (Operators)."""
        spool = self.get_object()
        body = SpoolCommandSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        command = data["command"]
        try:
            report = spool_jobs_command(
                command=command, spool=spool, generation=data["generation"], at=data["at"], actor=request.user, reason=data["reason"]
            )
        except InvalidInput as exc:
            return _invalid(exc)
        body = {
            "command": command,
            "changed": [job.id for job in report.changed],
            "refused": [{"id": exc.job.id, "status": exc.status, "detail": str(exc)} for exc in report.refused],
            "statuses": dict(report.statuses),
        }
        if not report.changed:
            held = ", ".join(f"{name} ({count})" for name, count in report.statuses.items()) or "none"
            body["detail"] = f"{command}: no job of spool {spool.name} allows it; its jobs are {held}"
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(body)

    @extend_schema(request=ReasonSerializer, responses={200: SpoolSerializer})
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

    @extend_schema(responses=SchedulerSerializer)
    def list(self, request):
        return Response(SchedulerSerializer(scheduler_state()).data)

    @extend_schema(request=ReasonSerializer, responses=SchedulerSerializer)
    @action(detail=False, methods=["post"], serializer_class=ReasonSerializer)
    def shutdown(self, request):
        return Response(SchedulerSerializer(scheduler_shutdown(actor=request.user, reason=_reason(request))).data)

    @extend_schema(request=ReasonSerializer, responses=SchedulerSerializer)
    @action(detail=False, methods=["post"], serializer_class=ReasonSerializer)
    def resume(self, request):
        return Response(SchedulerSerializer(scheduler_resume(actor=request.user, reason=_reason(request))).data)

    @extend_schema(
        request=ReasonSerializer,
        responses={200: ReloadReportSerializer},
        description="Reload every spool's workflow file; a refused file keeps its spool's workflow and the answer is a 400 with the same report.",
    )
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
