from __future__ import annotations

from rest_framework.routers import SimpleRouter

from scheduling.api.jobs import JobViewSet, SchedulerViewSet, SpoolViewSet

router = SimpleRouter()
# --- workflow jobs (DOMAIN §3) ---
router.register("spools", SpoolViewSet, basename="spool")
router.register("jobs", JobViewSet, basename="job")
router.register("scheduler", SchedulerViewSet, basename="scheduler")

urlpatterns = router.urls
