from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.services import demo_admin_ensure


class Command(BaseCommand):
    help = "Create the demo administrator (once) and print its credentials."

    def handle(self, *args, **options) -> None:
        username, password, created = demo_admin_ensure()
        state = "created" if created else "exists"
        self.stdout.write(self.style.SUCCESS(f"demo administrator ({state}): username {username!r}, password {password!r}"))
