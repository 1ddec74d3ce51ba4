from __future__ import annotations

from django.core.management.base import BaseCommand

from monitoring.summaries.currencies import format_amount
from portal import clock
from scheduling.cutoffs.selectors import cutoff_states, cutoffs_listing


class Command(BaseCommand):
    help = "List the cut-offs (DOMAIN §8) with their next moment, the time left and the pending per currency, at the clock (--now)."

    def add_arguments(self, parser) -> None:
        clock.add_now_argument(parser)

    def handle(self, *args, **options) -> None:
        clock.apply_now_option(options)
        for state in cutoff_states(cutoffs_listing(), now=clock.now()):
            when = f"{clock.local(state.next_at):%Y-%m-%d %H:%M} ({state.seconds_left} s left)" if state.next_at else "none ahead"
            pending = "; ".join(f"{n} pending, {c} {format_amount(v, c)}" for c, (n, v) in state.pending.items()) or "nothing pending"
            risk = "  AT RISK" if state.at_risk else ""
            self.stdout.write(f"{state.cutoff.name} [{state.cutoff.interface.code}]: {when}: {pending}{risk}")
