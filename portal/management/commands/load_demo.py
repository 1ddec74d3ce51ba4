from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.services import demo_load


class Command(BaseCommand):
    help = "Load the demo data of every engine, once (make run calls it; migrations never do)."

    def handle(self, *args, **options) -> None:
        for line in demo_load():
            self.stdout.write(line)
