from __future__ import annotations

import django_filters
from rest_framework import viewsets

from portal.api.serializers import OutboundMessageSerializer
from portal.models import MessageStatus, OutboundMessage


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
