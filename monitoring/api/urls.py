from __future__ import annotations

from rest_framework.routers import SimpleRouter

from monitoring.api import batches

router = SimpleRouter()

# --- batch monitor (DOMAIN §1) ---
router.register("arrivals", batches.ArrivalViewSet, basename="arrival")
router.register("batch-configs", batches.BatchConfigViewSet, basename="batch-config")
router.register("batch-windows", batches.BatchWindowViewSet, basename="batch-window")
router.register("held-arrivals", batches.HeldArrivalViewSet, basename="held-arrival")

urlpatterns = router.urls
