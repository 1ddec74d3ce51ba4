from __future__ import annotations

import django_filters
from rest_framework import viewsets

from portal.api.fields import InstantFilter
from portal.api.pagination import IdCursorPagination
from portal.api.serializers import AuditEntrySerializer, OutboundMessageSerializer
from portal.models import AuditEntry, MessageStatus, OutboundMessage


class OutboundMessageFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=MessageStatus.choices)
    kind = django_filters.CharFilter()
    dedupe_key = django_filters.CharFilter()

    class Meta:
        model = OutboundMessage
        fields = ["status", "kind", "dedupe_key"]


class OutboundMessageViewSet(viewsets.ReadOnlyModelViewSet):
    """The outbox: every message the portal raised, with its delivery state."""

    queryset = OutboundMessage.objects.all()
    serializer_class = OutboundMessageSerializer
    filterset_class = OutboundMessageFilter


class AuditEntryFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_name")
    action = django_filters.CharFilter()
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    since = InstantFilter(field_name="at", lookup_expr="gte", label="at or after")
    until = InstantFilter(field_name="at", lookup_expr="lt", label="before")

    class Meta:
        model = AuditEntry
        fields = ["actor", "action", "object_type", "object_id"]


class NewestFirstPagination(IdCursorPagination):
    ordering = "-id"


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit log, newest first: who did what to which object, before and after, and why."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter
    pagination_class = NewestFirstPagination
