"""Registers the scheduling app's admin pages: the scheduler tasks and the workflow jobs."""

from __future__ import annotations

import scheduling.cutoffs.admin  # noqa: F401
import scheduling.scheduler.admin  # noqa: F401
import scheduling.workflows.admin  # noqa: F401
