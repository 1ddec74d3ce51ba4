"""Where django-q2 rows written before the engine split look (queued tasks, schedules): see workflows/tasks.py."""

from scheduling.workflows.tasks import finalize_generations, run_job  # noqa: F401
