from __future__ import annotations

from rest_framework.routers import SimpleRouter

from scheduling.api.views import CalendarGroupViewSet, InterfaceViewSet, SchedulerTaskViewSet

router = SimpleRouter()
router.register("calendar-groups", CalendarGroupViewSet, basename="calendar-group")
router.register("interfaces", InterfaceViewSet, basename="interface")
router.register("scheduler-tasks", SchedulerTaskViewSet, basename="scheduler-task")

urlpatterns = router.urls
