from __future__ import annotations

import io
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from portal import clock
from portal.lib.loop import StopSignal
from portal.lib.times import shown
from scheduling.workflows.models import Job, JobStatus
from scheduling.workflows.selectors import JobGates, job_counts_by_status, job_gates, jobs_filtered

COLUMNS = ("ID", "Spoolname", "Generation", "State", "Attempt", "Type", "Status", "Timestamp", "Comment")
MIN_WIDTHS = {"ID": 3, "Status": 8, "Timestamp": 19, "Comment": 7}
# On a narrow terminal these give way, in this order; the ID and the Status always stay.
DROP_ORDER = ("Attempt", "State", "Type", "Generation", "Comment", "Spoolname", "Timestamp")
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
                live.update(render(jobs(), limit) if limit else fitted(jobs(), console), refresh=True)
                stop.wait(max(interval, 0.2))


def status_text(job: Job, gates: JobGates) -> str:
    """The status, with what holds a due Waiting job or a Running job's pending pause."""
    if job.stop_flag:
        return f"{job.status} (stop)"
    waiting_for = gates.waiting_for(job)
    return f"{job.status} ({waiting_for})" if waiting_for else job.status


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


def fitted(jobs, console: Console) -> Group:
    """The live view cut to the terminal: one line per job, OK jobs give way first, whatever its size.

    The frame is measured with one row: the rest of the height (less that row's line, left free
    for the cursor) is for rows, since a header that wraps on a narrow terminal takes lines too.
    """
    with_one_row = len(console.render_lines(render(jobs, None, fit=1, width=console.width), console.options, pad=False))
    return render(jobs, None, fit=max(console.height - with_one_row, 1), width=console.width)


def _as_text(renderable, *, terminal: bool) -> str:
    """Rendered apart, so Django's output wrapper (and a test's buffer) gets whole lines."""
    console = Console(file=io.StringIO(), width=None if terminal else 200, force_terminal=terminal, no_color=not terminal)
    console.print(renderable)
    return console.file.getvalue()


def _as_json(jobs, limit: int | None) -> str:
    gates = job_gates()
    return json.dumps([job.as_row() | {"waiting_for": gates.waiting_for(job)} for job in _newest(jobs, limit)], indent=2)


def _row(job: Job, gates: JobGates, zone) -> dict[str, str | Text]:
    return {
        "ID": str(job.id),
        "Spoolname": job.spool.name,
        "Generation": f"{job.generation:06d}",
        "State": str(job.state),
        "Attempt": str(job.attempt),
        "Type": job.type,
        "Status": Text(status_text(job, gates), style=STATUS_STYLE.get(job.status, "")),
        "Timestamp": shown(job.timestamp, zone),
        # One line per job, so the rows counted to fit the terminal are the lines drawn: a long
        # comment is cut with an ellipsis (`jobs show ID` prints it whole).
        "Comment": Text(" ".join(job.comment.split()), no_wrap=True, overflow="ellipsis"),
    }


def _columns_for(rows: list[dict], width: int) -> list[str]:
    """The columns a terminal this wide shows: the comment shrinks first, then columns go in DROP_ORDER."""
    need = {column: max([len(column), *(len(str(row[column])) for row in rows)]) + 2 for column in COLUMNS}
    need["Comment"] = MIN_WIDTHS["Comment"] + 2
    columns = list(COLUMNS)
    for column in DROP_ORDER:
        if sum(need[c] for c in columns) <= width:
            break
        columns.remove(column)
    return columns


def render(jobs, limit: int | None, *, fit: int | None = None, width: int | None = None) -> Group:
    zone = clock.zone()
    jobs_shown = _fitting(jobs, fit) if fit is not None else _newest(jobs, limit)
    counts = job_counts_by_status(jobs)
    gates = job_gates()
    state = Text("SHUT DOWN", style="bold red") if gates.shut_down else Text("running", style="green")
    header = Text.assemble(
        "Jobs at ", f"{shown(gates.now, zone)} {settings.PORTAL_TIME_ZONE}", "  scheduler ", state, "  ",
        *[Text(f"{name} {count}  ", style=STATUS_STYLE[name]) for name, count in counts.items() if count],
    )
    rows = [_row(job, gates, zone) for job in jobs_shown]
    columns = _columns_for(rows, width) if width else list(COLUMNS)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", expand=False, pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=column != "Comment", overflow="ellipsis", min_width=MIN_WIDTHS.get(column))
    for row in rows:
        table.add_row(*(row[column] for column in columns))
    total = sum(counts.values())
    hidden = "" if len(rows) >= total else (
        ": OK jobs left out first to fit the terminal; --once lists every job" if fit is not None else f": the newest {len(rows)}"
    )
    narrow = [column for column in COLUMNS if column not in columns]
    footer = Text(f"{len(rows)} of {total} job(s) shown{hidden}" + (f"; no room for {', '.join(narrow)}" if narrow else ""), style="dim")
    return Group(header, table, footer)
