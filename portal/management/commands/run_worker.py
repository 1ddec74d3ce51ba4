from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections
from django.utils.module_loading import import_string

from portal.lib.loop import exec_shielded
from portal.services import schedules_setup


class Command(BaseCommand):
    help = (
        "The Procfile `worker`: declare the periodic schedules (idempotent), write the step outcomes a dead worker "
        "left in this host's journal, then run the django-q2 cluster (this process becomes a small one without Django that "
        "relays its output and signals); SIGTERM/SIGINT stop it gracefully (running tasks get STEP_KILL_GRACE_SECONDS to "
        "finish, then the cluster and its steps are killed), a second one at once."
    )

    def handle(self, *args, **options) -> None:
        for name, created in schedules_setup():
            self.stdout.write(f"schedule {name}: {'created' if created else 'up to date'}")
        for hook in settings.WORKER_START_HOOKS:
            self.stdout.write(f"{hook}: {import_string(hook)()}")
        self.stdout.flush()
        connections.close_all()
        # The checks ran at this command's start, all of them: the cluster's processes skip them, and the
        # URLconf and template tags they import (every view, DRF's renderers: some 20 MB in each of them).
        cluster = [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster", "--skip-checks"]
        exec_shielded(cluster, grace=settings.STEP_KILL_GRACE_SECONDS, what="the django-q2 cluster", name="run_worker")
