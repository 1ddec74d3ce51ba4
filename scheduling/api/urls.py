from __future__ import annotations

from rest_framework.routers import SimpleRouter

from scheduling.api.jobs import JobViewSet, SchedulerViewSet, SpoolViewSet
from scheduling.api.views import CalendarGroupViewSet, InterfaceViewSet, SchedulerTaskViewSet

router = SimpleRouter()
router.register("calendar-groups", CalendarGroupViewSet, basename="calendar-group")
router.register("interfaces", InterfaceViewSet, basename="interface")
router.register("scheduler-tasks", SchedulerTaskViewSet, basename="scheduler-task")
# --- workflow jobs (DOMAIN §3) ---
router.register("spools", SpoolViewSet, basename="spool")
router.register("jobs", JobViewSet, basename="job")
router.register("scheduler", SchedulerViewSet, basename="scheduler")

urlpatterns = router.urls
