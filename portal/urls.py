from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import console as monitor_views
from portal import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("livez", views.livez, name="livez"),
    path("livez/", views.livez),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/", views.healthz),
    path("metrics", views.metrics, name="metrics"),
    path("metrics/", views.metrics),
    path("api/v1/", include("portal.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The page and its script are two files (no inline script: CSP), Swagger UI's assets the portal's own.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("monitor/", monitor_views.monitor, name="monitor"),
    path("monitor/data/", monitor_views.monitor_data, name="monitor-data"),
    path("monitor/data/jobs/<int:job_id>/", monitor_views.monitor_job, name="monitor-job"),
    path("monitor/login/", monitor_views.MonitorLoginView.as_view(), name="monitor-login"),
    path("monitor/logout/", monitor_views.MonitorLogoutView.as_view(), name="monitor-logout"),
    # Browsers ask for /favicon.ico on every page (the API's JSON too): the portal's own icon, no request leaves it.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("", views.home, name="home"),
]
