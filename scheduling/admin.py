"""Admin of the scheduling app."""

from __future__ import annotations

# --- workflow jobs (DOMAIN §3): registered in job_admin.py ---------------------------
from scheduling import job_admin  # noqa: F401
