from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.services import schedules_setup


class Command(BaseCommand):
    help = "Create or update the portal's django-q2 schedules by name (idempotent)."

    def handle(self, *args, **options) -> None:
        for name, created in schedules_setup():
            self.stdout.write(f"schedule {name}: {'created' if created else 'up to date'}")
