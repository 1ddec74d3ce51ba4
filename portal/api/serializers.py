from __future__ import annotations

from rest_framework import serializers

from portal.models import AuditEntry, OutboundMessage


class OutboundMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutboundMessage
        fields = [
            "id", "uuid", "kind", "dedupe_key", "payload", "status", "attempts", "created_at",
            "next_attempt_at", "last_error", "sent_at", "queue_message_id",
        ]
        read_only_fields = fields


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True, help_text="username, or the process that acted")

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "object_type", "object_id", "object_repr", "before", "after", "reason"]
        read_only_fields = fields
