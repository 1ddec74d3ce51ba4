from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.checks import WithoutWebChecks
from portal.lib.loop import StopSignal
from scheduling.scheduler.heartbeat import heartbeat_loop


class Command(WithoutWebChecks, BaseCommand):
    help = (
        "The live heartbeat (Procfile `clock`): E_HeartbeatStart, then E_Heartbeat every HEARTBEAT_SECONDS, "
        "handing due scheduler tasks to django-q2 workers; stops on SIGTERM/SIGINT."
    )

    def handle(self, *args, **options) -> None:
        heartbeat_loop(stop=StopSignal())
