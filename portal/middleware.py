"""Request-wide plumbing that every surface shares."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from portal.logins import login_locked_for
from portal.logs import log_request_start
from portal.services import audit_reason_scope

# A caller's own request id is kept when it looks like one (a proxy's, a client's); anything else is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A login is a name and a password: a larger body names no account worth looking up.
LOGIN_BODY_MAX_BYTES = 4096


class RequestContextMiddleware:
    """Every log line of a request names it; the answer carries the id (X-Request-ID) to quote."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        log_request_start(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class ApiErrorsAsJsonMiddleware:
    """An API error Django answers itself (no route for the path, a bad Host) is JSON like every other API answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return JsonResponse({"detail": response.reason_phrase}, status=response.status_code)
        return response


class BodySizeMiddleware:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE is answered 413 in JSON naming the limit, before anything reads it.

    Django would raise RequestDataTooBig at the first read (django-prometheus reads every body) and
    answer an HTML 400 that names nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "the Content-Length header is not a number"}, status=400)
        if limit is not None and length > limit:
            return JsonResponse(
                {"detail": f"the body is {length:,} bytes; at most {limit:,} bytes are taken (API_MAX_BODY_BYTES)",
                 "limit_bytes": limit},
                status=413,
            )
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """The CONTENT_SECURITY_POLICY header on every answer that has none (Django 5.2 has no CSP of its own)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class LoginThrottleMiddleware:
    """DOMAIN §4: a login or token request of a locked account or address answers 429 (portal.logins)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path not in settings.LOGIN_PATHS:
            return self.get_response(request)
        wait = login_locked_for(username=_posted_username(request), address=request.META.get("REMOTE_ADDR"))
        if not wait:
            return self.get_response(request)
        detail = (
            f"too many wrong passwords (at most {settings.LOGIN_FAILURES_MAX} within "
            f"{settings.LOGIN_FAILURE_WINDOW_SECONDS} s): try again in {wait} s"
        )
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"detail": detail}, status=429)
        else:
            response = HttpResponse(detail + "\n", status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(wait)
        return response


def _posted_username(request: HttpRequest) -> str | None:
    """The account a login names: a form field, or the JSON body's (the token route)."""
    if request.content_type == "application/json":
        if len(request.body) > LOGIN_BODY_MAX_BYTES:
            return None
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):
            return None
        username = body.get("username") if isinstance(body, dict) else None
    else:
        try:
            username = request.POST.get("username")
        except MultiPartParserError:  # the view answers the broken body (400); the throttle knows no account
            return None
    return username if isinstance(username, str) else None


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
