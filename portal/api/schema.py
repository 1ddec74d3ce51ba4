"""The OpenAPI schema as the API answers: every error status an operation can give is listed with its body.

drf-spectacular documents the answers a view declares; the errors come from the framework
(authentication, roles, lookups, parsers, filters, pagination, the login throttle) and are the
same for every view of a kind, so they are added here once instead of on each view.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "additionalProperties": True,
}
# A refusal names its fields ({"field": ["why"]}), or is a list of reasons, or {"detail": ...}.
REFUSAL = {
    "oneOf": [
        {"type": "object", "additionalProperties": True},
        {"type": "array", "items": {"type": "string"}},
    ]
}
WRITES = {"POST", "PUT", "PATCH"}
LOGIN_OPERATIONS = {"/api/v1/token/", "/api/v1/token/refresh/"}


def _error(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class PortalAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors: dict[str, dict] = {}
        if self.method in WRITES or (self.method == "GET" and self._is_list_view()):
            errors["400"] = _error("Refused input, naming the field; nothing was written.", REFUSAL)
        if self.path in LOGIN_OPERATIONS:
            errors["401"] = _error("Wrong credentials, or a token that is expired, revoked or issued before a password change.", DETAIL)
            errors["429"] = _error("Too many wrong passwords for this account or from this address: wait for Retry-After.", DETAIL)
        else:
            errors["401"] = _error("No credentials, or a token that is expired or revoked.", DETAIL)
            errors["403"] = _error("The account's role may not do this.", DETAIL)
        if "{" in self.path:
            errors["404"] = _error("No such object.", DETAIL)
        if self.method in WRITES:
            errors["413"] = _error("The body is larger than the limit it names.", DETAIL)
            errors["415"] = _error("The body is not JSON.", DETAIL)
        for code, response in errors.items():
            responses.setdefault(code, response)
        return dict(sorted(responses.items()))


def one_or_many(item: dict, *, max_items: int) -> dict:
    """A feed's body or answer: one object, or a list of them (the answer mirrors the shape sent)."""
    return {"oneOf": [item, {"type": "array", "items": item, "minItems": 1, "maxItems": max_items}]}


class OneAnswerSchema(PortalAutoSchema):
    """A GET of a router's list route answered with one object (not a page), whose query can be refused (400)."""

    def _is_list_view(self, serializer=None) -> bool:
        return False

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction == "response":
            responses.setdefault("400", _error("Refused query, naming the parameter.", REFUSAL))
        return dict(sorted(responses.items()))
