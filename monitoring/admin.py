"""Registers the monitoring app's admin pages: the batch monitor and the summaries."""

from __future__ import annotations

import monitoring.batches.admin  # noqa: F401
import monitoring.summaries.admin  # noqa: F401
