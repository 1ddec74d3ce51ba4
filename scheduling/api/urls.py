"""The scheduling app's API routes: calendar groups, scheduler tasks, the workflow jobs, cut-offs and the forecast."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from scheduling.cutoffs import api as cutoffs
from scheduling.scheduler import api as scheduler
from scheduling.workflows import api as workflows

router = SimpleRouter()
router.register("calendar-groups", scheduler.CalendarGroupViewSet, basename="calendar-group")
router.register("scheduler-tasks", scheduler.SchedulerTaskViewSet, basename="scheduler-task")
router.register("spools", workflows.SpoolViewSet, basename="spool")
router.register("jobs", workflows.JobViewSet, basename="job")
router.register("scheduler", workflows.SchedulerViewSet, basename="scheduler")
router.register("cutoffs", cutoffs.CutOffViewSet, basename="cutoff")
router.register("forecast", cutoffs.ForecastViewSet, basename="forecast")

urlpatterns = router.urls
