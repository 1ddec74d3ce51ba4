from __future__ import annotations

from rest_framework.routers import SimpleRouter

from monitoring.api import batches
from monitoring.api.transactions import ServiceSummaryViewSet, TransactionViewSet

router = SimpleRouter()
# --- batch monitor (DOMAIN §1) ---
router.register("arrivals", batches.ArrivalViewSet, basename="arrival")
router.register("batch-configs", batches.BatchConfigViewSet, basename="batch-config")
router.register("batch-windows", batches.BatchWindowViewSet, basename="batch-window")
router.register("held-arrivals", batches.HeldArrivalViewSet, basename="held-arrival")
# --- transactions and summaries (DOMAIN §2) ---
router.register("transactions", TransactionViewSet, basename="transaction")
router.register("summaries", ServiceSummaryViewSet, basename="summary")

urlpatterns = router.urls
