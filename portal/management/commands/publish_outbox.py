from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal import clock
from portal.backends.local import LocalQueueTaken, local_queue_claim
from portal.checks import WithoutWebChecks
from portal.lib.loop import StopSignal
from portal.publisher import outbox_publish_all, outbox_publish_loop


class Command(WithoutWebChecks, BaseCommand):
    help = "Send pending outbox messages to the control queue (once, or in a loop with --loop)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep publishing until SIGTERM/SIGINT")
        clock.add_now_argument(parser)

    def handle(self, *args, loop: bool, **options) -> None:
        clock.apply_now_option(options)
        if settings.CONTROL_QUEUE_BACKEND == "local":
            try:
                local_queue_claim()
            except LocalQueueTaken as exc:  # refused at start-up (DOMAIN §9), not after the first batch
                raise CommandError(str(exc)) from None
        if not loop:
            report = outbox_publish_all()
            self.stdout.write(f"sent {report.sent}, retrying {report.retrying}, failed {report.failed}")
            for error in report.errors:
                self.stderr.write(error)
            return
        outbox_publish_loop(stop=StopSignal())
