"""The scheduling app's API routes: calendar groups, scheduler tasks and the workflow jobs."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from scheduling.scheduler import api as scheduler
from scheduling.workflows import api as workflows

router = SimpleRouter()
router.register("calendar-groups", scheduler.CalendarGroupViewSet, basename="calendar-group")
router.register("scheduler-tasks", scheduler.SchedulerTaskViewSet, basename="scheduler-task")
router.register("spools", workflows.SpoolViewSet, basename="spool")
router.register("jobs", workflows.JobViewSet, basename="job")
router.register("scheduler", workflows.SchedulerViewSet, basename="scheduler")

urlpatterns = router.urls
