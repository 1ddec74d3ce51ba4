from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from portal.lib.loop import run_shielded
from portal.services import schedules_setup


class Command(BaseCommand):
    help = (
        "The Procfile `worker`: declare the periodic schedules (idempotent), write the step outcomes a dead worker "
        "left in this host's journal, then run the django-q2 cluster; SIGTERM/SIGINT stop it gracefully (running "
        "tasks get STEP_KILL_GRACE_SECONDS to finish, then the cluster and its steps are killed), a second one at once."
    )

    def handle(self, *args, **options) -> None:
        for name, created in schedules_setup():
            self.stdout.write(f"schedule {name}: {'created' if created else 'up to date'}")
        for hook in settings.WORKER_START_HOOKS:
            self.stdout.write(f"{hook}: {import_string(hook)()}")
        self.stdout.flush()
        code = run_shielded([sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"], grace=settings.STEP_KILL_GRACE_SECONDS)
        if code not in (0, -15, -9):
            raise CommandError(f"the django-q2 cluster ended with {code}")
