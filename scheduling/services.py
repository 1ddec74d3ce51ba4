"""Services of the scheduling app."""

from __future__ import annotations

# --- workflow jobs (DOMAIN §3): defined in job_services.py ---------------------------
from scheduling.job_services import (  # noqa: F401
    InvalidInput,
    JobConflict,
    LoadReport,
    ReloadReport,
    SpoolCommandReport,
    dispatcher_cycle,
    dispatcher_sweep,
    generations_finalize,
    job_add,
    job_attempt_finish,
    job_comment,
    job_disable,
    job_enable,
    job_pause,
    job_reset,
    job_run,
    job_schedule,
    job_start,
    jobs_dispatch,
    jobs_mark_zombies,
    scheduler_resume,
    scheduler_shutdown,
    spool_jobs_command,
    spool_set_enabled,
    workflow_load,
    workflows_reload,
)
