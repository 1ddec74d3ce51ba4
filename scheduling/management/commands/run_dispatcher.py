from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from portal import clock
from portal.checks import WithoutWebChecks
from portal.lib.loop import StopSignal
from scheduling.workflows.dispatcher import dispatcher_cycle
from scheduling.workflows.wakeup import jobs_wait, wakeups_delivered

log = logging.getLogger(__name__)


class Command(WithoutWebChecks, BaseCommand):
    help = (
        "The workflow job dispatcher: starts due Waiting jobs in django-q2 workers and marks orphaned "
        "Running jobs Zombie (at start-up and every few seconds). Runs until SIGTERM/SIGINT, "
        "or one turn (zombies, then due jobs) with --once. (finalizeAfterDays is the heartbeat's, hourly.)"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="one turn (zombies, then due jobs) and exit")
        clock.add_now_argument(parser)

    def handle(self, *args, once: bool, **options) -> None:
        clock.apply_now_option(options)
        if once:
            self.stdout.write(f"started {dispatcher_cycle(sweep=True)} job(s)")
            return
        stop = StopSignal()
        poll = settings.DISPATCHER_POLL_MS / 1000
        last_sweep = None  # the first turn sweeps: zombies left by a restart are found at start-up
        while not stop.stopped:
            sweep = last_sweep is None or time.monotonic() - last_sweep >= settings.DISPATCHER_SWEEP_SECONDS
            try:
                started = dispatcher_cycle(sweep=sweep)
                if sweep:
                    last_sweep = time.monotonic()
            except Exception:  # noqa: BLE001  - a database or broker outage must not end the loop
                log.exception("dispatcher: turn failed; trying again")
                connection.close()
                started = 0
            # On PostgreSQL it waits even after a turn that started jobs: that turn claimed all it could
            # (the queue ahead is full, or nothing else was due), and what frees a place or makes a job
            # due ends the wait at once (a NOTIFY: a job made due, an outcome that leaves work behind),
            # while busy workers take the next due jobs themselves, without the dispatcher's claims
            # chasing them. Without wake-ups (SQLite) a turn that started jobs is followed by another.
            if not started or wakeups_delivered():
                jobs_wait(poll)
