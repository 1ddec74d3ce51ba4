"""Where django-q2 rows written before the engine split look (queued tasks, schedules): see scheduler/tasks.py."""

from scheduling.scheduler.tasks import heartbeat, run_claimed_task  # noqa: F401
