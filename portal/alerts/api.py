"""API of the alerts (DOMAIN §7): episodes and their acknowledgement, channels and rules."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.alerts.channels import target_shown
from portal.alerts.config import (
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    notification_channel_create,
    notification_channel_delete,
    notification_channel_update,
)
from portal.alerts.models import AlertEpisode, AlertKind, AlertRule, AlertState, ChannelKind, NotificationChannel
from portal.alerts.services import AlertConflict, alert_acknowledge, notification_channel_test
from portal.api.fields import BooleanFilter
from portal.api.mixins import JsonTypesMixin, ServiceSaveMixin, api_errors
from portal.api.pagination import IdCursorPagination
from portal.permissions import IsAdministrator, IsOperator, ReadOrAdminister

# --- episodes ------------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    acknowledged_by = serializers.CharField(source="acknowledged_by_name", read_only=True, help_text="username")

    class Meta:
        model = AlertEpisode
        fields = [
            "id", "kind", "subject", "state", "summary", "opened_at", "acknowledged_by", "acknowledged_at",
            "acknowledge_reason", "acknowledged_until", "resolved_at", "tenant", "config", "spool", "interface",
        ]
        read_only_fields = fields


class AcknowledgeSerializer(JsonTypesMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    until = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="OPEN again after it")


class ChannelTestSerializer(JsonTypesMixin, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class AlertFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=AlertState.choices)
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices)
    subject = django_filters.CharFilter()
    tenant = django_filters.CharFilter()
    config = django_filters.CharFilter()
    spool = django_filters.CharFilter()

    class Meta:
        model = AlertEpisode
        fields = ["state", "kind", "subject", "tenant", "config", "spool"]


class NewestFirst(IdCursorPagination):
    ordering = "-id"


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Every alert episode, newest first; Operators acknowledge an open one (reason required, optional ``until``)."""

    queryset = AlertEpisode.objects.all()
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    pagination_class = NewestFirst

    def get_permissions(self):
        return [IsOperator()] if self.action == "acknowledge" else super().get_permissions()

    @extend_schema(request=AcknowledgeSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None) -> Response:
        episode = self.get_object()
        body = AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            episode = alert_acknowledge(actor=request.user, alert=episode, **body.validated_data)
        except AlertConflict as exc:
            return Response({"detail": str(exc), "state": exc.state}, status=status.HTTP_409_CONFLICT)
        except DjangoValidationError as exc:
            raise api_errors(exc) from None
        return Response(AlertSerializer(episode).data)


# --- channels --------------------------------------------------------------------------------


class NotificationChannelSerializer(JsonTypesMixin, serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=500, style={"input_type": "password"},
        help_text="write-only: signs webhook bodies; left out keeps it, empty removes it",
    )
    has_secret = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    target = serializers.CharField(
        max_length=2000, required=False, allow_blank=True,
        help_text="email: addresses, comma separated; webhook: an http(s) URL; apprise: an Apprise URL; console: any label. "
        "Answered with its secrets masked; sending the masked value back keeps the target.",
    )

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "kind", "target", "secret", "has_secret", "enabled"]
        validators = []  # the service checks the name, naming the field

    def get_has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)

    def to_representation(self, channel: NotificationChannel) -> dict:
        data = super().to_representation(channel)
        data["target"] = target_shown(channel.kind, channel.target)
        return data

    def create(self, validated_data):
        return notification_channel_create(actor=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        return notification_channel_update(actor=self.context["request"].user, channel=instance, **validated_data)


class NotificationChannelFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=ChannelKind.choices)
    enabled = BooleanFilter()

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "enabled"]


class NotificationChannelViewSet(ServiceSaveMixin, viewsets.ModelViewSet):
    """Channels that reach people: readers look (targets masked, secrets never), Administrators change and test."""

    queryset = NotificationChannel.objects.all()
    serializer_class = NotificationChannelSerializer
    filterset_class = NotificationChannelFilter

    def get_permissions(self):
        return [IsAdministrator()] if self.action == "test" else [ReadOrAdminister()]

    def perform_destroy(self, instance) -> None:
        notification_channel_delete(actor=self.request.user, channel=instance)

    @extend_schema(
        request=ChannelTestSerializer,
        responses={202: inline_serializer("ChannelTestQueued", {"queued": serializers.CharField(help_text="the outbox dedupe key")})},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None) -> Response:
        channel = self.get_object()
        body = ChannelTestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        message = notification_channel_test(actor=request.user, channel=channel, **body.validated_data)
        return Response({"queued": message.dedupe_key}, status=status.HTTP_202_ACCEPTED)


# --- rules -------------------------------------------------------------------------------------


class AlertRuleSerializer(JsonTypesMixin, serializers.ModelSerializer):
    channels = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=NotificationChannel.objects.all(), allow_empty=False, help_text="channel names"
    )
    escalate_to = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=NotificationChannel.objects.all(), required=False, help_text="channel names"
    )
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=AlertKind.choices), required=False, help_text="empty: all")
    repeat_minutes = serializers.IntegerField(min_value=1, allow_null=True, required=False)
    escalate_after_minutes = serializers.IntegerField(min_value=1, allow_null=True, required=False)

    class Meta:
        model = AlertRule
        fields = [
            "id", "name", "channels", "kinds", "tenant", "config", "spool", "interface",
            "repeat_minutes", "escalate_after_minutes", "escalate_to",
        ]
        validators = []  # the service checks the name, naming the field

    def create(self, validated_data):
        return alert_rule_create(actor=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        return alert_rule_update(actor=self.context["request"].user, rule=instance, **validated_data)


class AlertRuleFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    channel = django_filters.CharFilter(field_name="channels__name", distinct=True)

    class Meta:
        model = AlertRule
        fields = ["name", "channel"]


class AlertRuleViewSet(ServiceSaveMixin, viewsets.ModelViewSet):
    """Which alerts reach which channels, how often again, and whom to escalate to; Administrators write."""

    queryset = AlertRule.objects.prefetch_related("channels", "escalate_to")
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter
    permission_classes = [ReadOrAdminister]

    def perform_destroy(self, instance) -> None:
        alert_rule_delete(actor=self.request.user, rule=instance)
