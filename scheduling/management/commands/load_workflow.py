from __future__ import annotations

from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from portal import clock
from scheduling.management.commands._cli import add_actor_arguments, cli_actor
from scheduling.workflows.services import InvalidInput, workflow_load, workflow_path
from scheduling.workflows.workflow import WorkflowError


class Command(BaseCommand):
    help = "Load or reload a spool's workflow file (a new spool name creates the spool); a bad file is refused whole."

    def add_arguments(self, parser) -> None:
        parser.add_argument("spool", help="spool name: letters, digits, '.', '_', '-' (not '.' or '-' first)")
        parser.add_argument("file", help="the INI workflow file: absolute, relative to the project directory, or else to the current one")
        add_actor_arguments(parser)

    def handle(self, *args, spool: str, file: str, user: str | None, reason: str, **options) -> None:
        clock.apply_now_option(options)
        if not workflow_path(file).exists() and Path(file).exists():
            file = str(Path(file).resolve())  # typed from another directory: keep where it really is, for reloads
        try:
            report = workflow_load(spool_name=spool, path=file, actor=cli_actor(user), reason=reason)
        except (WorkflowError, InvalidInput, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(str(report)))
