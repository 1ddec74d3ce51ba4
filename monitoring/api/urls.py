"""The monitoring app's API routes: the batch monitor, the interfaces, the transactions and summaries."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from monitoring.batches import api as batches
from monitoring.summaries import api as summaries

router = SimpleRouter()
router.register("arrivals", batches.ArrivalViewSet, basename="arrival")
router.register("batch-configs", batches.BatchConfigViewSet, basename="batch-config")
router.register("batch-windows", batches.BatchWindowViewSet, basename="batch-window")
router.register("held-arrivals", batches.HeldArrivalViewSet, basename="held-arrival")
router.register("interfaces", summaries.InterfaceViewSet, basename="interface")
router.register("transactions", summaries.TransactionViewSet, basename="transaction")
router.register("summaries", summaries.ServiceSummaryViewSet, basename="summary")

urlpatterns = router.urls
