from __future__ import annotations

import io
import json
import zoneinfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from portal import clock
from portal.lib.loop import StopSignal
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.selectors import job_counts_by_status, jobs_filtered, scheduler_state

COLUMNS = ("ID", "Spoolname", "Generation", "State", "Attempt", "Type", "Status", "Timestamp", "Comment")
MIN_WIDTHS = {"ID": 3, "Status": 8, "Timestamp": 19, "Comment": 7}
STATUS_STYLE = {
    JobStatus.WAITING: "cyan",
    JobStatus.RUNNING: "bold blue",
    JobStatus.OK: "green",
    JobStatus.ERROR: "bold red",
    JobStatus.PAUSE: "yellow",
    JobStatus.DISABLED: "dim",
    JobStatus.ZOMBIE: "bold magenta",
}


def _statuses(values: list[str]) -> list[str]:
    wanted = [word.strip() for value in values for word in value.split(",") if word.strip()]
    by_lower = {status.lower(): status for status in JobStatus.values}
    unknown = [word for word in wanted if word.lower() not in by_lower]
    if unknown:
        raise CommandError(f"unknown status {', '.join(unknown)}; one of {', '.join(JobStatus.values)}")
    return [by_lower[word.lower()] for word in wanted]


class Command(BaseCommand):
    help = "The job table in the terminal (ID, Spoolname, Generation, State, Attempt, Type, Status, Timestamp, Comment), refreshed live; --once prints it once, --json prints the jobs as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--spool", action="append", default=[], help="only this spool (comma list or repeated)")
        parser.add_argument("--status", action="append", default=[], help="only these statuses (comma list or repeated)")
        parser.add_argument("--once", action="store_true", help="print the table once and exit")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the jobs as JSON and exit")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (live view)")
        parser.add_argument("--limit", type=int, default=None, help="at most this many jobs, the newest (live: what fits the terminal)")

    def handle(self, *args, spool: list[str], status: list[str], once: bool, as_json: bool, interval: float, limit: int | None, **options) -> None:
        statuses = _statuses(status)
        spool = [name.strip() for value in spool for name in value.split(",") if name.strip()]

        def jobs():
            return jobs_filtered(spools=spool, statuses=statuses)

        if as_json:
            self.stdout.write(_as_json(jobs(), limit))
            return
        if once:
            self.stdout.write(_as_text(render(jobs(), limit), terminal=self.stdout.isatty()), ending="")
            return
        console = Console()
        stop = StopSignal()
        with Live(console=console, auto_refresh=False, screen=False) as live:
            while not stop.stopped:
                live.update(render(jobs(), limit, fit=None if limit else max(console.height - 8, 5)), refresh=True)
                stop.wait(max(interval, 0.2))


def _newest(jobs, limit: int | None) -> list[Job]:
    if limit is None:
        return list(jobs)
    return list(reversed(jobs.order_by("-id")[:limit]))


def _fitting(jobs, limit: int) -> list[Job]:
    """What fits the terminal: finished (OK) jobs give way first, so no job needing an eye scrolls off."""
    rows = list(jobs.exclude(status=JobStatus.OK).order_by("-id")[:limit])
    if len(rows) < limit:
        rows += jobs.filter(status=JobStatus.OK).order_by("-id")[: limit - len(rows)]
    return sorted(rows, key=lambda job: job.id)


def _as_text(renderable, *, terminal: bool) -> str:
    """Rendered apart, so Django's output wrapper (and a test's buffer) gets whole lines."""
    console = Console(file=io.StringIO(), width=None if terminal else 200, force_terminal=terminal, no_color=not terminal)
    console.print(renderable)
    return console.file.getvalue()


def _as_json(jobs, limit: int | None) -> str:
    return json.dumps([job.as_row() for job in _newest(jobs, limit)], indent=2)


def render(jobs, limit: int | None, *, fit: int | None = None) -> Group:
    zone = zoneinfo.ZoneInfo(settings.PORTAL_TIME_ZONE)
    rows = _fitting(jobs, fit) if fit is not None else _newest(jobs, limit)
    counts = job_counts_by_status(jobs)
    control = scheduler_state()
    now = clock.now().astimezone(zone)
    state = Text("SHUT DOWN", style="bold red") if control.shut_down else Text("running", style="green")
    header = Text.assemble(
        "Jobs at ", f"{now:%Y-%m-%d %H:%M:%S %Z}", "  scheduler ", state, "  ",
        *[Text(f"{name} {count}  ", style=STATUS_STYLE[name]) for name, count in counts.items() if count],
    )
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", expand=False, pad_edge=False)
    for column in COLUMNS:
        # On a narrow terminal the comment gives way first; numbers and times are never wrapped.
        table.add_column(column, no_wrap=column != "Comment", overflow="ellipsis", min_width=MIN_WIDTHS.get(column))
    for job in rows:
        table.add_row(
            str(job.id),
            job.spool.name,
            f"{job.generation:06d}",
            str(job.state),
            str(job.attempt),
            job.type,
            Text(job.status + (" (stop)" if job.stop_flag else ""), style=STATUS_STYLE.get(job.status, "")),
            f"{job.timestamp.astimezone(zone):%Y-%m-%d %H:%M:%S}",
            job.comment,
        )
    total = sum(counts.values())
    hidden = "" if len(rows) >= total else (
        ": OK jobs left out first to fit the terminal; --once lists every job" if fit is not None else f": the newest {len(rows)}"
    )
    footer = Text(f"{len(rows)} of {total} job(s) shown{hidden}", style="dim")
    return Group(header, table, footer)
