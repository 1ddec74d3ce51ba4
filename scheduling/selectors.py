"""Selectors of the scheduling app."""

from __future__ import annotations

# --- workflow jobs (DOMAIN §3): defined in job_selectors.py --------------------------
from scheduling.job_selectors import job_counts_by_status, jobs_filtered, scheduler_state  # noqa: F401
