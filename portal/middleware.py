"""Request-wide plumbing that every surface shares."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from portal.services import audit_reason_scope


class AuditReasonMiddleware:
    """Opens the scope in which a request's reason reaches the audit rows it causes.

    The body's "reason" is noted by the API's JSON parser (reading the body here
    would put Django's upload size limit on the bulk feeds); ``?reason=`` suits DELETE.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit_reason_scope(request.GET.get("reason", "").strip()):
            return self.get_response(request)
