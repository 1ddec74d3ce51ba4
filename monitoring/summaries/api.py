"""API of the transaction feed and the summary events (issue 5)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ParseError
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
from monitoring.summaries.services import (
    MAX_AMOUNT_CHARS,
    MAX_FEED_ITEMS,
    READ_ONLY_FIELDS,
    REFERENCE_MAX_LENGTH,
    FeedRefused,
    FeedResult,
    interface_save,
    transactions_feed,
)
from portal.api.fields import InstantFilter
from portal.api.mixins import JsonTypesMixin, ServiceSaveMixin
from portal.api.parsers import ExactJSONParser
from portal.api.schema import one_or_many
from portal.permissions import ReadOrAdminister, ReadOrFeed


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
    since = InstantFilter(field_name="received_at", lookup_expr="gte", label="received at or after")
    until = InstantFilter(field_name="received_at", lookup_expr="lt", label="received before")
    completed_since = InstantFilter(field_name="completed_at", lookup_expr="gte")
    completed_until = InstantFilter(field_name="completed_at", lookup_expr="lt")

    class Meta:
        model = Transaction
        fields = ["interface", "status", "currency", "reference"]


# What POST /transactions/ takes, item by item (monitoring.summaries.services checks each the same way).
TRANSACTION_INPUT = {
    "type": "object",
    "properties": {
        "interface": {"type": "string", "minLength": 1, "description": "interface code"},
        "reference": {"type": "string", "minLength": 1, "maxLength": REFERENCE_MAX_LENGTH},
        "amount": {
            "oneOf": [
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "maxLength": MAX_AMOUNT_CHARS,
                 "description": "a decimal string, at most the currency's minor units"},
                {"type": "number", "minimum": 0, "maximum": 10**18, "exclusiveMaximum": True, "description": "taken exactly, never as a float"},
            ]
        },
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"},
        "status": {"type": "string", "enum": TransactionStatus.values},
        "received_at": {"type": "string", "format": "date-time", "description": "ISO-8601 with its offset"},
        "completed_at": {"type": "string", "format": "date-time", "nullable": True, "description": "required once COMPLETED or FAILED"},
        **{name: {"description": "ignored: a listed transaction can be fed back as it is"} for name in sorted(READ_ONLY_FIELDS)},
    },
    "required": ["interface", "reference", "amount", "currency", "status", "received_at"],
    "additionalProperties": False,
}
FEED_OUTCOMES = one_or_many(
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "reference": {"type": "string"},
            "result": {"type": "string", "enum": [result.value for result in FeedResult]},
        },
        "required": ["id", "reference", "result"],
    },
    max_items=MAX_FEED_ITEMS,
)


class TransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Business transactions per interface. POST one object or a list of up to 10,000 to feed them."""

    queryset = Transaction.objects.select_related("interface")
    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    permission_classes = [ReadOrFeed]
    parser_classes = [ExactJSONParser]

    @extend_schema(
        request={"application/json": one_or_many(TRANSACTION_INPUT, max_items=MAX_FEED_ITEMS)},
        responses={
            201: FEED_OUTCOMES,
            200: FEED_OUTCOMES,
        },
        description=(
            "One transaction object or a list of up to 10,000; the answer mirrors the shape, one outcome per item. "
            "A refused feed (400, nothing written) answers {detail, errors: [{index, reference, field, message}]}."
        ),
    )
    def create(self, request: Request) -> Response:
        data = request.data
        single = isinstance(data, dict)
        if not single and not isinstance(data, list):
            raise ParseError("send one transaction object or a list of them")
        if not single and not data:
            raise ParseError("the list is empty: send at least one transaction")
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
    since = InstantFilter(field_name="interval_end", lookup_expr="gte", label="interval ending at or after")
    until = InstantFilter(field_name="interval_end", lookup_expr="lt", label="interval ending before")

    class Meta:
        model = ServiceSummary
        fields = ["task", "interface", "event", "direction"]


class ServiceSummaryViewSet(viewsets.ReadOnlyModelViewSet):
    """The summary events the HOSTED/INVOKED_SERVICE_MONITOR tasks emitted, with their figures."""

    queryset = ServiceSummary.objects.select_related("interface", "message")
    serializer_class = ServiceSummarySerializer
    filterset_class = ServiceSummaryFilter


# --- monitored interfaces -----


class InterfaceSerializer(JsonTypesMixin, serializers.ModelSerializer):
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
