"""The API of cut-offs (DOMAIN §8): Administrators write, everyone who reads sees the countdown; and today's forecast."""

from __future__ import annotations

import datetime as dt

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.summaries.currencies import format_amount
from monitoring.summaries.models import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, MonitoredInterface
from portal import clock
from portal.api.fields import WallTimeField
from portal.api.mixins import JsonTypesMixin, ServiceSaveMixin
from portal.api.schema import OneAnswerSchema
from portal.lib.times import iso_utc
from portal.permissions import ReadOrAdminister
from scheduling.cutoffs.forecast import FIRST_DAY, KINDS, LAST_DAY, forecast_day
from scheduling.cutoffs.models import CutOff
from scheduling.cutoffs.selectors import CutOffState, cutoff_states, cutoffs_listing, pending_now
from scheduling.cutoffs.services import cutoff_create, cutoff_delete, cutoff_update
from scheduling.scheduler.models import CalendarGroup

PENDING_SCHEMA = {
    "type": "object",
    "description": "per currency code: what is pending now",
    "additionalProperties": {
        "type": "object",
        "properties": {"count": {"type": "integer"}, "value": {"type": "string", "description": "in the currency's minor units"}},
        "required": ["count", "value"],
    },
}


class CutOffSerializer(JsonTypesMixin, serializers.ModelSerializer):
    """A cut-off by natural keys; its countdown and pending are read-only, as of the request."""

    name = serializers.CharField(max_length=100)  # unique: the service says so, naming the field
    interface = serializers.SlugRelatedField(slug_field="code", queryset=MonitoredInterface.objects.all(), help_text="interface code")
    calendar_group = serializers.SlugRelatedField(slug_field="name", queryset=CalendarGroup.objects.all(), help_text="calendar group name")
    currencies = serializers.ListField(child=serializers.CharField(max_length=3), required=False, help_text="ISO 4217 codes; empty: all")
    time = WallTimeField(format="%H:%M", help_text="HH:MM in the calendar group's time zone")
    effective_from = serializers.DateField(required=False, allow_null=True)
    effective_to = serializers.DateField(required=False, allow_null=True)
    warn_minutes = serializers.IntegerField(min_value=0, max_value=CutOff.WARN_MINUTES_MAX, required=False)
    min_value = serializers.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, min_value=0, required=False, coerce_to_string=True
    )
    next_at = serializers.SerializerMethodField()
    seconds_left = serializers.SerializerMethodField()
    pending = serializers.SerializerMethodField()

    class Meta:
        model = CutOff
        fields = [
            "id", "name", "interface", "currencies", "time", "calendar_group", "effective_from", "effective_to",
            "warn_minutes", "min_value", "next_at", "seconds_left", "pending",
        ]

    def _state(self, cutoff: CutOff) -> CutOffState:
        """The countdown of each cut-off against one reading of the pending, shared by the whole answer."""
        context = self.context
        if "pending_figures" not in context:
            context["now"] = clock.now()
            context["pending_figures"] = pending_now(now=context["now"])
        states = context.setdefault("states", {})  # next_at, seconds_left and pending: one countdown per cut-off
        if cutoff.pk not in states:
            states[cutoff.pk] = cutoff_states([cutoff], now=context["now"], figures=context["pending_figures"])[0]
        return states[cutoff.pk]

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True, "description": "UTC; null: no cut-off ahead"})
    def get_next_at(self, cutoff: CutOff) -> str | None:
        return iso_utc(self._state(cutoff).next_at)

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_seconds_left(self, cutoff: CutOff) -> int | None:
        return self._state(cutoff).seconds_left

    @extend_schema_field(PENDING_SCHEMA)
    def get_pending(self, cutoff: CutOff) -> dict:
        return {
            currency: {"count": count, "value": format_amount(value, currency)}
            for currency, (count, value) in self._state(cutoff).pending.items()
        }

    def create(self, validated_data):
        return cutoff_create(actor=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        return cutoff_update(actor=self.context["request"].user, cutoff=instance, **validated_data)


class CutOffFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    interface = django_filters.CharFilter(field_name="interface__code")
    calendar_group = django_filters.CharFilter(field_name="calendar_group__name")

    class Meta:
        model = CutOff
        fields = ["name", "interface", "calendar_group"]


class CutOffViewSet(ServiceSaveMixin, viewsets.ModelViewSet):
    """Cut-offs with their next moment, the seconds left and what is pending per currency now."""

    queryset = cutoffs_listing()
    serializer_class = CutOffSerializer
    filterset_class = CutOffFilter
    permission_classes = [ReadOrAdminister]

    def perform_destroy(self, instance) -> None:
        cutoff_delete(actor=self.request.user, cutoff=instance)


FORECAST_ENTRY = inline_serializer(
    "ForecastEntry",
    {
        "at": serializers.DateTimeField(help_text="UTC"),
        "at_local": serializers.CharField(help_text="the same instant in the portal's time zone, with its offset"),
        "kind": serializers.ChoiceField(choices=KINDS),
        "subject": serializers.CharField(help_text="the config, cut-off, task or job (with its spool)"),
        "detail": serializers.CharField(),
    },
)
FORECAST = inline_serializer(
    "Forecast",
    {
        "date": serializers.DateField(),
        "time_zone": serializers.CharField(help_text="PORTAL_TIME_ZONE"),
        "entries": FORECAST_ENTRY.__class__(many=True),
    },
)


class ForecastViewSet(viewsets.ViewSet):
    """The day ahead in time order: window ends and SLAs, cut-offs, scheduler task runs, jobs due."""

    schema = OneAnswerSchema()

    @extend_schema(
        parameters=[OpenApiParameter("date", OpenApiTypes.DATE, description="YYYY-MM-DD; default: today in PORTAL_TIME_ZONE")],
        responses={200: FORECAST},
    )
    def list(self, request: Request) -> Response:
        raw = request.query_params.get("date")
        try:
            day = dt.date.fromisoformat(raw) if raw is not None else clock.local().date()
        except ValueError:
            raise ValidationError({"date": [f"{raw[:20]!r} is not a date (YYYY-MM-DD)"]}) from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValidationError({"date": [f"{day} is not between {FIRST_DAY} and {LAST_DAY}"]})
        zone = clock.zone()
        entries = [
            {"at": iso_utc(e.at), "at_local": e.at.astimezone(zone).isoformat(), "kind": e.kind, "subject": e.subject, "detail": e.detail}
            for e in forecast_day(day=day)
        ]
        return Response({"date": day.isoformat(), "time_zone": str(zone), "entries": entries})
