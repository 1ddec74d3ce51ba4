from __future__ import annotations

from rest_framework.parsers import JSONParser

from portal.services import audit_reason_note


class ReasonJSONParser(JSONParser):
    """JSON, and a body's "reason" noted for the audit rows of the request (configuration changes too)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if isinstance(data, dict):
            audit_reason_note(data.get("reason"))
        return data
