from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal import clock
from scheduling.scheduler.heartbeat import heartbeat_tick
from scheduling.scheduler.models import TaskEvent


class Command(BaseCommand):
    help = (
        "Run one heartbeat tick in-process (--once): when it returns, every due scheduler task has run "
        "and its state changes and outbox rows are committed. The live heartbeat is `run_heartbeat`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="run one tick and return (required)")
        parser.add_argument("--start", action="store_true", help="make it an E_HeartbeatStart tick (recovery after a restart)")
        clock.add_now_argument(parser)

    def handle(self, *args, once: bool, start: bool, **options) -> None:
        if not once:
            raise CommandError("heartbeat runs one tick with --once; the live heartbeat loop is `manage.py run_heartbeat`")
        clock.apply_now_option(options)
        report = heartbeat_tick(event=TaskEvent.HEARTBEAT_START if start else TaskEvent.HEARTBEAT, inline=True)
        self.stdout.write(str(report))
