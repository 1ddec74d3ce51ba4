from __future__ import annotations

import os
import time

from django.apps import AppConfig

# The start of this portal process, or of the process that started it (django-q2's workers inherit
# their cluster's): one E_HeartbeatStart per start of the portal's processes, not per worker (DOMAIN §4).
PROCESS_STARTED_AT = "PORTAL_PROCESS_STARTED_AT"


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        os.environ.setdefault(PROCESS_STARTED_AT, repr(time.time()))
