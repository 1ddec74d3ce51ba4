"""API of the transaction feed and the summary events (issue 5)."""

from __future__ import annotations

import codecs
import json
from decimal import Decimal

import django_filters
from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.summaries.currencies import format_amount
from monitoring.summaries.models import (
    Direction,
    MonitoredInterface,
    ServiceSummary,
    SummaryEvent,
    Transaction,
    TransactionStatus,
)
from monitoring.summaries.services import FeedRefused, FeedResult, interface_save, transactions_feed
from portal.api.mixins import ServiceSaveMixin
from portal.permissions import ReadOrAdminister, ReadOrFeed


class ExactJSONParser(JSONParser):
    """JSON whose numbers with a fraction become Decimal, never float: an amount sent as 12.10 stays 12.10."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_float=Decimal, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class TransactionSerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", read_only=True)
    amount = serializers.SerializerMethodField(help_text="a decimal string with the currency's minor units")

    class Meta:
        model = Transaction
        fields = [
            "id", "interface", "reference", "amount", "currency", "status", "received_at", "completed_at",
            "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_amount(self, obj: Transaction) -> str:
        return format_amount(obj.amount, obj.currency)


class TransactionFilter(django_filters.FilterSet):
    interface = django_filters.ModelChoiceFilter(
        field_name="interface", to_field_name="code", queryset=MonitoredInterface.objects.all()
    )
    status = django_filters.ChoiceFilter(choices=TransactionStatus.choices)
    currency = django_filters.CharFilter()
    reference = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte", label="received at or after")
    until = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="lt", label="received before")
    completed_since = django_filters.IsoDateTimeFilter(field_name="completed_at", lookup_expr="gte")
    completed_until = django_filters.IsoDateTimeFilter(field_name="completed_at", lookup_expr="lt")

    class Meta:
        model = Transaction
        fields = ["interface", "status", "currency", "reference"]


FEED_ITEM = inline_serializer(
    "TransactionFeedItem",
    {
        "interface": serializers.CharField(help_text="interface code"),
        "reference": serializers.CharField(max_length=128),
        "amount": serializers.CharField(help_text="decimal string, at most the currency's minor units"),
        "currency": serializers.CharField(help_text="ISO 4217 code"),
        "status": serializers.ChoiceField(choices=TransactionStatus.choices),
        "received_at": serializers.DateTimeField(),
        "completed_at": serializers.DateTimeField(allow_null=True, required=False),
    },
)
FEED_OUTCOME = inline_serializer(
    "TransactionFeedOutcome",
    {
        "id": serializers.IntegerField(),
        "reference": serializers.CharField(),
        "result": serializers.ChoiceField(choices=[result.value for result in FeedResult]),
    },
)


class TransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Business transactions per interface. POST one object or a list of up to 10,000 to feed them."""

    queryset = Transaction.objects.select_related("interface")
    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    permission_classes = [ReadOrFeed]
    parser_classes = [ExactJSONParser]

    @extend_schema(
        request=FEED_ITEM,
        responses={
            201: FEED_OUTCOME,
            200: FEED_OUTCOME,
            400: inline_serializer("FeedRefused", {"detail": serializers.CharField(), "errors": serializers.ListField()}),
        },
        description="One transaction object or a list of up to 10,000; the answer mirrors the shape, one outcome per item.",
    )
    def create(self, request: Request) -> Response:
        data = request.data
        single = isinstance(data, dict)
        if not single and not isinstance(data, list):
            raise ParseError("send one transaction object or a list of them")
        try:
            report = transactions_feed(items=[data] if single else data)
        except FeedRefused as refused:
            first = refused.errors[0]
            return Response(
                {
                    "detail": f"{len(refused.errors)} problem(s) in the feed, nothing was written; first: {first}",
                    "errors": [error.as_json() for error in refused.errors],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        answer = [outcome.as_json() for outcome in report.outcomes]
        created = report.count(FeedResult.CREATED) > 0
        return Response(answer[0] if single else answer, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ServiceSummarySerializer(serializers.ModelSerializer):
    interface = serializers.SlugRelatedField(slug_field="code", read_only=True)
    uuid = serializers.SerializerMethodField(help_text="the uuid of the published message")
    dedupe_key = serializers.CharField(source="message.dedupe_key", default=None, read_only=True)
    message_status = serializers.CharField(source="message.status", default=None, read_only=True)

    class Meta:
        model = ServiceSummary
        fields = [
            "id", "event", "task", "interface", "direction", "interval_start", "interval_end", "emitted_at", "totals",
            "uuid", "dedupe_key", "message_status",
        ]
        read_only_fields = fields

    def get_uuid(self, obj: ServiceSummary) -> str | None:
        return obj.message.payload.get("uuid") if obj.message else None


class ServiceSummaryFilter(django_filters.FilterSet):
    task = django_filters.CharFilter()
    interface = django_filters.ModelChoiceFilter(
        field_name="interface", to_field_name="code", queryset=MonitoredInterface.objects.all()
    )
    event = django_filters.ChoiceFilter(choices=SummaryEvent.choices)
    direction = django_filters.ChoiceFilter(choices=Direction.choices)
    since = django_filters.IsoDateTimeFilter(field_name="interval_end", lookup_expr="gte", label="interval ending at or after")
    until = django_filters.IsoDateTimeFilter(field_name="interval_end", lookup_expr="lt", label="interval ending before")

    class Meta:
        model = ServiceSummary
        fields = ["task", "interface", "event", "direction"]


class ServiceSummaryViewSet(viewsets.ReadOnlyModelViewSet):
    """The summary events the HOSTED/INVOKED_SERVICE_MONITOR tasks emitted, with their figures."""

    queryset = ServiceSummary.objects.select_related("interface", "message")
    serializer_class = ServiceSummarySerializer
    filterset_class = ServiceSummaryFilter


# --- monitored interfaces -----


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
