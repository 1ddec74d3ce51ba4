"""Batch monitor and summary models."""

from __future__ import annotations

from django.db import models


class Direction(models.TextChoices):
    HOSTED = "HOSTED"  # a service the shop hosts
    INVOKED = "INVOKED"  # a service the shop calls


class MonitoredInterface(models.Model):
    """A payment interface whose business the portal summarises (DOMAIN §2)."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    inbound_channel = models.CharField(max_length=200, blank=True)
    outbound_channel = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def natural_key(self) -> tuple[str]:
        return (self.code,)


# --- batch monitor (DOMAIN §1) -----------------------------------------------------
from monitoring.batch_models import (  # noqa: E402,F401  - registered in this app
    AlertState,
    ArrivalException,
    BatchAlert,
    BatchConfig,
    BatchFile,
    BatchSource,
    BatchWindow,
    HeldArrival,
    TriggerStatus,
    WindowStatus,
)
