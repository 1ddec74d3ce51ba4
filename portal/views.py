from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from portal.metrics import DomainCollector, address_allowed
from portal.selectors import portal_health


def livez(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No database, so a dead heartbeat never restarts a healthy web server."""
    return JsonResponse({"status": "ok"})


def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, the heartbeat, the dispatcher and the queue backend."""
    health = portal_health()
    return JsonResponse(health.as_json(), status=200 if health.healthy else 503)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("/monitor/")


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape; no login, but only from METRICS_ALLOWED_IPS, and with METRICS_TOKEN when one is set."""
    if not address_allowed(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOWED_IPS):
        return HttpResponseForbidden("metrics are not served to this address\n", content_type="text/plain")
    if settings.METRICS_TOKEN:
        sent = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), settings.METRICS_TOKEN.encode()):
            response = HttpResponse("metrics need the bearer token (METRICS_TOKEN)\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def scrape_registry() -> CollectorRegistry:
    """Under gunicorn, each worker writes its request metrics to PROMETHEUS_MULTIPROC_DIR: the scrape sums them all."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(DomainCollector())
    return registry
