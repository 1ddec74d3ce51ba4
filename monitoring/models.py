"""Registers the monitoring app's models with Django: the batch monitor and the summaries."""

from __future__ import annotations

from monitoring.batches.models import (  # noqa: F401
    BatchAlert,
    BatchConfig,
    BatchFile,
    BatchSource,
    BatchWindow,
    HeldArrival,
)
from monitoring.summaries.models import MonitoredInterface, ServiceSummary, Transaction  # noqa: F401
