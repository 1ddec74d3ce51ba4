from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.lib.loop import run_shielded
from portal.services import schedules_setup


class Command(BaseCommand):
    help = (
        "The Procfile `worker`: declare the periodic schedules (idempotent), then run the django-q2 cluster; "
        "SIGTERM/SIGINT stop it gracefully, running tasks finish."
    )

    def handle(self, *args, **options) -> None:
        for name, created in schedules_setup():
            self.stdout.write(f"schedule {name}: {'created' if created else 'up to date'}")
        self.stdout.flush()
        code = run_shielded([sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"])
        if code not in (0, -15):
            raise CommandError(f"the django-q2 cluster ended with {code}")
