from __future__ import annotations

from django.core.management.base import BaseCommand

from monitoring.batches.scan import batch_scan
from portal import clock


class Command(BaseCommand):
    help = "Scan batch configs for open and delayed batches once, writing one control message per state change."

    def add_arguments(self, parser) -> None:
        clock.add_now_argument(parser)
        parser.add_argument(
            "--interface", action="append", default=[], metavar="CODE",
            help="only the configs of this monitored interface (repeatable; default: all configs)",
        )

    def handle(self, *args, interface: list[str], **options) -> None:
        clock.apply_now_option(options)
        report = batch_scan(now=clock.now(), interface_codes=tuple(interface))
        self.stdout.write(str(report))
