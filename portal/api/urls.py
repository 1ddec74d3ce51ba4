from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from portal.api.views import OutboundMessageViewSet

router = DefaultRouter()
router.register("messages", OutboundMessageViewSet, basename="message")

urlpatterns = [
    path("token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("", include("monitoring.api.urls")),
    path("", include("scheduling.api.urls")),
    path("", include(router.urls)),
]
