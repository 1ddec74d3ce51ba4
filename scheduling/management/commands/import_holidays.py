from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from scheduling.scheduler.calendars import holidays_import
from scheduling.scheduler.models import CalendarGroup


class Command(BaseCommand):
    help = (
        "Import the public or market holidays of a year into a calendar group as non-business dates: "
        "import_holidays GROUP CODE YEAR (CODE: a country such as DE, US, DE-BY, or a market such as NYSE, ECB, XETR)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("group", help="the calendar group's name")
        parser.add_argument("code", help="country code (DE, US, DE-BY) or market code (NYSE, ECB, TAR, XETR)")
        parser.add_argument("year", type=int)

    def handle(self, *args, group: str, code: str, year: int, **options) -> None:
        try:
            found = CalendarGroup.objects.get(name=group)
        except CalendarGroup.DoesNotExist:
            raise CommandError(f"no calendar group named {group!r}") from None
        try:
            result = holidays_import(actor="import_holidays", group=found, code=code, year=year)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(str(result))
