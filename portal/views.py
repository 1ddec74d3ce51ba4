from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from portal.metrics import address_allowed
from portal.selectors import portal_health


def healthz(request: HttpRequest) -> JsonResponse:
    health = portal_health()
    return JsonResponse(health.as_json(), status=200 if health.healthy else 503)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("/monitor/")


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape; no login, but only from METRICS_ALLOWED_IPS."""
    if not address_allowed(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOWED_IPS):
        return HttpResponseForbidden("metrics are not served to this address\n", content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
