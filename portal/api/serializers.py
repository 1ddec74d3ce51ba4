from __future__ import annotations

from rest_framework import serializers

from portal.models import OutboundMessage


class OutboundMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutboundMessage
        fields = [
            "id", "uuid", "kind", "dedupe_key", "payload", "status", "attempts", "created_at",
            "next_attempt_at", "last_error", "sent_at", "queue_message_id",
        ]
        read_only_fields = fields
