"""The ``webhook`` channel: a JSON POST of the notification body, signed with HMAC-SHA256 when a secret is set."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

from portal.alerts.channels import Undeliverable

SIGNATURE_HEADER = "X-Portal-Signature"
# Answers that mean "this request will never be taken": anything else is tried again.
RETRIED_CLIENT_ERRORS = {408, 425, 429}


def check(target: str) -> list[str]:
    parts = urlsplit(target.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{target!r} is not an http:// or https:// URL"]
    return []


def shown(target: str) -> str:
    """Scheme, host and first path segment; credentials, the rest of the path and the query masked."""
    parts = urlsplit(target)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    if parts.username:
        host = f"{parts.username}:***@{host}" if parts.password else f"***@{host}"
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}" if segments else ""
    if len(segments) > 1:
        path += "/***"
    return f"{parts.scheme}://{host}{path}" + ("?***" if parts.query else "")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a moved receiver answers its 3xx as an error, never a POST turned into a GET


_opener = urllib.request.build_opener(_NoRedirects)


def send(channel, payload: dict) -> None:
    body = json.dumps(payload["body"], separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "batch-operations-portal"}
    if channel.secret:
        headers[SIGNATURE_HEADER] = signature(channel.secret, body)
    request = urllib.request.Request(channel.target, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=settings.NOTIFICATION_TIMEOUT_SECONDS) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 500 and exc.code not in RETRIED_CLIENT_ERRORS:
            raise Undeliverable(f"the receiver answered {exc.code} {exc.reason}") from None
        raise
