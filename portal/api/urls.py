from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from monitoring.api.urls import router as monitoring_router
from portal.alerts.api import AlertRuleViewSet, AlertViewSet, NotificationChannelViewSet
from portal.api.views import AuditEntryViewSet, OutboundMessageViewSet
from scheduling.api.urls import router as scheduling_router


class PortalRouter(DefaultRouter):
    """The API root lists every app's resources, not only the portal's own."""

    def get_api_root_view(self, api_urls=None):
        list_name = self.routes[0].name
        registry = [*monitoring_router.registry, *scheduling_router.registry, *self.registry]
        api_root_dict = {prefix: list_name.format(basename=basename) for prefix, _, basename in registry}
        return self.APIRootView.as_view(api_root_dict=api_root_dict)


router = PortalRouter()
router.register("messages", OutboundMessageViewSet, basename="message")
router.register("audit", AuditEntryViewSet, basename="audit-entry")
router.register("alerts", AlertViewSet, basename="alert")
router.register("notification-channels", NotificationChannelViewSet, basename="notification-channel")
router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")

urlpatterns = [
    path("token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("", include("monitoring.api.urls")),
    path("", include("scheduling.api.urls")),
    path("", include(router.urls)),
]
