from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal import console as monitor_views
from portal import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/", views.healthz),
    path("metrics", views.metrics, name="metrics"),
    path("metrics/", views.metrics),
    path("api/v1/", include("portal.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("monitor/", monitor_views.monitor, name="monitor"),
    path("monitor/data/", monitor_views.monitor_data, name="monitor-data"),
    path("monitor/login/", monitor_views.MonitorLoginView.as_view(), name="monitor-login"),
    path("monitor/logout/", monitor_views.MonitorLogoutView.as_view(), name="monitor-logout"),
    path("", views.home, name="home"),
]
