from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from portal.selectors import portal_health


def healthz(request: HttpRequest) -> JsonResponse:
    health = portal_health()
    return JsonResponse(health.as_json(), status=200 if health.healthy else 503)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("/admin/")
