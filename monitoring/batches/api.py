"""API of the batch monitor: arrivals, configs, windows and held arrivals (DOMAIN §1)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from monitoring.batches import selectors, services
from monitoring.batches.models import AlertState, ArrivalException, BatchConfig, BatchFile, BatchWindow, WindowStatus
from monitoring.summaries.models import MonitoredInterface
from portal.api.fields import BooleanFilter, IntegerFilter
from portal.api.mixins import JsonTypesMixin
from portal.api.schema import one_or_many
from portal.permissions import IsOperator, ReadOrAdminister, ReadOrFeed


def as_validation_error(exc: services.BatchInputError) -> ValidationError:
    detail: dict[str, list[str]] = {}
    for error in exc.errors:
        detail.setdefault(error.field, []).append(error.message)
    return ValidationError(detail)


# --- arrivals -----------------------------------------------------------------------


class ArrivalSerializer(serializers.ModelSerializer):
    tenant = serializers.CharField(source="config.tenant", read_only=True)
    config = serializers.CharField(source="config.name", read_only=True)
    source = serializers.CharField(source="source_name", read_only=True)
    window_id = serializers.IntegerField(read_only=True, allow_null=True)
    exception = serializers.ChoiceField(
        choices=[("", "none"), *ArrivalException.choices], read_only=True, help_text="empty: placed in its window"
    )

    class Meta:
        model = BatchFile
        fields = [
            "id", "tenant", "config", "source", "extract_timestamp", "received_at", "window_id", "exception",
            "held", "counted", "applied_at", "payload",
        ]
        read_only_fields = fields


class ArrivalFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="config__tenant")
    config = django_filters.CharFilter(field_name="config__name")
    source = django_filters.CharFilter(field_name="source_name")
    exception = django_filters.ChoiceFilter(choices=ArrivalException.choices)
    window = IntegerFilter(field_name="window_id")
    held = BooleanFilter()

    class Meta:
        model = BatchFile
        fields = ["tenant", "config", "source", "exception", "window", "held"]


# What POST /arrivals/ takes: the three fields every arrival has, and any others the sender adds
# (kept as the arrival's payload); one object, or a list of up to 10,000 placed in order.
ARRIVAL_INPUT = {
    "type": "object",
    "properties": {
        "tenant": {"type": "string", "minLength": 1, "description": "the tenant of a batch config"},
        "source": {"type": "string", "minLength": 1, "description": "a source that config expects"},
        "extract_timestamp": {"type": "string", "format": "date-time", "description": "ISO-8601 with its offset"},
    },
    "required": list(services.ARRIVAL_FIELDS),
    "additionalProperties": True,
}
ARRIVAL_RESULT = {
    "type": "object",
    "properties": {
        "window_id": {"type": "integer", "nullable": True},
        "window_status": {"type": "string", "nullable": True},
        "exception": {"type": "string", "nullable": True, "enum": [*ArrivalException.values, None]},
    },
    "required": ["window_id", "window_status", "exception"],
}
# A refusal of the batch services (BatchInputError.as_json): the 409 of a config in use, of a release.
BATCH_REFUSAL = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"index": {"type": "integer", "nullable": True}, "field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["detail"],
}


class ArrivalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Files received (each readable by its ``id``): ``POST`` one arrival ``{tenant, source, extract_timestamp}`` or a list of up to
    10,000, placed in order, all or nothing; each answers ``{window_id, window_status, exception}``."""

    queryset = BatchFile.objects.select_related("config")
    serializer_class = ArrivalSerializer
    filterset_class = ArrivalFilter
    permission_classes = [ReadOrFeed]

    @extend_schema(
        request={"application/json": one_or_many(ARRIVAL_INPUT, max_items=services.MAX_ARRIVALS_PER_REQUEST)},
        responses={201: one_or_many(ARRIVAL_RESULT, max_items=services.MAX_ARRIVALS_PER_REQUEST)},
        description=(
            "One arrival or a list of up to 10,000, placed in order, all or nothing; the answer mirrors the shape. "
            "A refused request (400, nothing written) answers {detail, errors: [{index, field, message}]}."
        ),
    )
    def create(self, request, *args, **kwargs) -> Response:
        try:
            items = services.arrivals_check_shape(request.data)
            results = services.arrivals_record(items=items)
        except services.BatchInputError as exc:
            return Response(exc.as_json(), status=status.HTTP_400_BAD_REQUEST)
        body = [result.as_json() for result in results]
        return Response(body[0] if isinstance(request.data, dict) else body, status=status.HTTP_201_CREATED)


# --- configs ----------------------------------------------------------------------------


class SourceNamesField(serializers.ListField):
    """A config's sources, by name in both directions."""

    def get_attribute(self, instance: BatchConfig) -> list[str]:
        return [source.name for source in instance.sources.all()]


class BatchConfigSerializer(JsonTypesMixin, serializers.ModelSerializer):
    sources = SourceNamesField(child=serializers.CharField(max_length=200), allow_empty=False)
    interface = serializers.SlugRelatedField(
        slug_field="code", queryset=MonitoredInterface.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = BatchConfig
        # Exactly the fields of issue 4: a config reads back as it was written. Its alert
        # state is on its windows (``/api/v1/batch-windows/``) and filters this list.
        fields = [
            "id", "name", "tenant", "description", "sources", "window_hours", "max_wait_hours", "target_app",
            "target_workflow", "exception_check", "active", "interface", "realert_minutes", "risk_tolerance_minutes",
        ]
        validators = []  # uniqueness is the service's, with messages naming the field


class BatchConfigFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter()
    name = django_filters.CharFilter()
    interface = django_filters.CharFilter(field_name="interface__code")
    active = BooleanFilter()
    alert_state = django_filters.ChoiceFilter(field_name="alert__state", choices=AlertState.choices)

    class Meta:
        model = BatchConfig
        fields = ["tenant", "name", "interface", "active", "alert_state"]


class BatchConfigViewSet(viewsets.ModelViewSet):
    """Batch configs: everyone who reads may look; Administrators create, change and delete."""

    queryset = selectors.configs_for_listing()
    serializer_class = BatchConfigSerializer
    filterset_class = BatchConfigFilter
    permission_classes = [ReadOrAdminister]

    def create(self, request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        sources = fields.pop("sources")
        try:
            config = services.batch_config_create(actor=request.user, fields=fields, sources=sources)
        except services.BatchInputError as exc:
            raise as_validation_error(exc) from None
        return Response(self.get_serializer(self.get_queryset().get(id=config.id)).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs) -> Response:
        config = self.get_object()
        serializer = self.get_serializer(config, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        sources = fields.pop("sources", None)
        try:
            services.batch_config_update(actor=request.user, config_id=config.id, fields=fields, sources=sources)
        except services.BatchInputError as exc:
            raise as_validation_error(exc) from None
        return Response(self.get_serializer(self.get_queryset().get(id=config.id)).data)

    @extend_schema(responses={204: None, 409: BATCH_REFUSAL})
    def destroy(self, request, *args, **kwargs) -> Response:
        config = self.get_object()
        try:
            services.batch_config_delete(actor=request.user, config_id=config.id)
        except services.BatchInputError as exc:
            return Response(exc.as_json(), status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- windows ----------------------------------------------------------------------------


class BatchWindowSerializer(serializers.ModelSerializer):
    config = serializers.CharField(source="config.name", read_only=True)
    tenant = serializers.CharField(source="config.tenant", read_only=True)
    sla = serializers.DateTimeField(read_only=True)
    alert_state = serializers.CharField(read_only=True)
    received_sources = serializers.SerializerMethodField()
    missing_sources = serializers.SerializerMethodField()

    class Meta:
        model = BatchWindow
        fields = [
            "id", "config", "tenant", "status", "extract_timestamp", "window_start", "window_end", "sla",
            "expected_count", "received_count", "received_sources", "missing_sources", "max_wait_hours",
            "trigger_status", "alert_state", "opened_at", "completed_at", "failed_at", "failed_by", "fail_reason",
        ]
        read_only_fields = fields

    def get_received_sources(self, window: BatchWindow) -> list[str]:
        return selectors.window_received_sources(window)

    def get_missing_sources(self, window: BatchWindow) -> list[str]:
        return selectors.window_missing_sources(window)


class BatchWindowFilter(django_filters.FilterSet):
    config = django_filters.CharFilter(field_name="config__name")
    tenant = django_filters.CharFilter(field_name="config__tenant")
    status = django_filters.ChoiceFilter(choices=WindowStatus.choices)
    alert_state = django_filters.ChoiceFilter(choices=AlertState.choices)

    class Meta:
        model = BatchWindow
        fields = ["config", "tenant", "status", "alert_state"]


class FailSerializer(JsonTypesMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class WindowConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    status = serializers.CharField(help_text="the window's status: only an OPEN one can be failed")


class FailedWindowSerializer(BatchWindowSerializer):
    held_applied = serializers.IntegerField(help_text="held arrivals placed once the window was out of the way")
    still_held = serializers.IntegerField()

    class Meta(BatchWindowSerializer.Meta):
        fields = [*BatchWindowSerializer.Meta.fields, "held_applied", "still_held"]
        read_only_fields = fields


class ReleaseSerializer(serializers.Serializer):
    failed_window = BatchWindowSerializer()
    held_applied = serializers.IntegerField()
    still_held = serializers.IntegerField()


class BatchWindowViewSet(viewsets.ReadOnlyModelViewSet):
    """Batch windows; ``POST .../{id}/fail/`` with ``{reason}`` fails an OPEN one (Operators)."""

    queryset = selectors.windows_for_listing()
    serializer_class = BatchWindowSerializer
    filterset_class = BatchWindowFilter

    @extend_schema(request=FailSerializer, responses={200: FailedWindowSerializer, 409: WindowConflictSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def fail(self, request, pk=None) -> Response:
        window = self.get_object()  # DRF's lookup: a non-numeric id is a 404, not a 500
        serializer = FailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            outcome = services.batch_window_fail(window_id=window.id, actor=request.user, reason=serializer.validated_data["reason"])
        except services.WindowStateError as exc:
            return Response({"detail": str(exc), "status": exc.status}, status=status.HTTP_409_CONFLICT)
        except services.BatchInputError as exc:
            raise as_validation_error(exc) from None
        data = self.get_serializer(self.get_queryset().get(id=outcome.window.id)).data
        return Response({**data, "held_applied": outcome.applied, "still_held": outcome.still_held})


# --- held arrivals ------------------------------------------------------------------------


class BlockedBySerializer(serializers.Serializer):
    window_id = serializers.IntegerField(allow_null=True, help_text="null: a window no arrival has opened yet")
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    status = serializers.CharField(allow_null=True)


class HeldArrivalSerializer(serializers.ModelSerializer):
    tenant = serializers.CharField(source="config.tenant", read_only=True)
    config = serializers.CharField(source="config.name", read_only=True)
    source = serializers.CharField(source="source_name", read_only=True)
    blocked_by = serializers.SerializerMethodField()

    class Meta:
        model = BatchFile
        fields = ["id", "tenant", "config", "source", "extract_timestamp", "received_at", "payload", "blocked_by"]
        read_only_fields = fields

    @extend_schema_field(BlockedBySerializer)
    def get_blocked_by(self, file: BatchFile) -> dict:
        blocker = selectors.held_blocker(file)
        field = serializers.DateTimeField()
        return {**blocker, "window_start": field.to_representation(blocker["window_start"]),
                "window_end": field.to_representation(blocker["window_end"])}


class HeldArrivalFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="config__tenant")
    config = django_filters.CharFilter(field_name="config__name")

    class Meta:
        model = BatchFile
        fields = ["tenant", "config"]


class HeldArrivalViewSet(viewsets.ReadOnlyModelViewSet):
    """FUTURE_WINDOW arrivals waiting for the windows before them. ``POST .../{id}/release/`` with
    ``{reason}`` fails the window that blocks them (Operators)."""

    queryset = selectors.held_arrivals()
    serializer_class = HeldArrivalSerializer
    filterset_class = HeldArrivalFilter

    @extend_schema(request=FailSerializer, responses={200: ReleaseSerializer, 409: BATCH_REFUSAL})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def release(self, request, pk=None) -> Response:
        held = self.get_object()
        serializer = FailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            outcome = services.held_arrival_release(file_id=held.id, actor=request.user, reason=serializer.validated_data["reason"])
        except services.BatchInputError as exc:
            return Response(exc.as_json(), status=status.HTTP_409_CONFLICT)
        window = selectors.windows_for_listing().get(id=outcome.window.id)
        return Response({"failed_window": BatchWindowSerializer(window).data, "held_applied": outcome.applied, "still_held": outcome.still_held})
