from __future__ import annotations

from django.core.management.base import BaseCommand

from portal import clock
from portal.prune import retention_prune


class Command(BaseCommand):
    help = (
        "Delete sent messages, task transitions, job attempts of finished generations, summary events, finished "
        "transactions and finished batch windows (with their files) older than PRUNE_AFTER_DAYS, and audit rows "
        "older than AUDIT_PRUNE_AFTER_DAYS when set; in bounded batches (DOMAIN §9)."
    )

    def add_arguments(self, parser) -> None:
        clock.add_now_argument(parser)

    def handle(self, *args, **options) -> None:
        clock.apply_now_option(options)
        for what, count in retention_prune(now=clock.now()).items():
            self.stdout.write(f"{what}: {count} deleted")
