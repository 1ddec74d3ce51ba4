from __future__ import annotations

from rest_framework.routers import SimpleRouter

from monitoring.api.transactions import ServiceSummaryViewSet, TransactionViewSet

router = SimpleRouter()
# --- transactions and summaries (issue 5)
router.register("transactions", TransactionViewSet, basename="transaction")
router.register("summaries", ServiceSummaryViewSet, basename="summary")

urlpatterns = router.urls
