from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from portal import clock
from portal.lib.times import shown
from scheduling.management.commands._cli import add_actor_arguments, cli_actor, cli_instant
from scheduling.workflows.models import Job, Spool
from scheduling.workflows.selectors import JobDetail, job_detail
from scheduling.workflows.services import (
    TIMED_COMMANDS,
    InvalidInput,
    JobConflict,
    job_add,
    job_comment,
    job_schedule,
    scheduler_resume,
    scheduler_shutdown,
    spool_jobs_command,
    workflows_reload,
)

SPOOL_COMMANDS = ("start", "pause", "reset", "disable", "enable")
AT_HELP = "ISO-8601; no offset: PORTAL_TIME_ZONE"


def when(instant) -> str:
    """Times as the console shows them: in PORTAL_TIME_ZONE, the zone named."""
    return f"{shown(instant, clock.zone())} {settings.PORTAL_TIME_ZONE}" if instant else "-"


def describe(job: Job) -> str:
    flag = ", stop flag set" if job.stop_flag else ""
    return f"job {job.id} {job.spool.name}/{job.generation:06d} step {job.state} attempt {job.attempt}: {job.status}{flag}, timestamp {when(job.timestamp)}"


def detail_lines(detail: JobDetail) -> list[str]:
    """`jobs show`: what the console's job detail shows, in the same order."""
    job = detail.job
    lines = [
        describe(job),
        f"  type          {job.type}",
        f"  waiting for   {detail.waiting_for or '-'}",
        f"  comment       {job.comment or '-'}",
        f"  command       {' '.join(detail.command) or '-'}",
        f"  return code   {'-' if job.return_code is None else job.return_code}",
        f"  started       {when(job.started_at)}",
        f"  finished      {when(job.finished_at)}",
        f"  worker        {job.worker or '-'}",
        "  output tail" + ("" if job.output_tail else "   -"),
        *[f"    {line}" for line in job.output_tail.splitlines()],
        f"  attempts ({len(detail.attempts)})",
        *[
            f"    step {a.state} attempt {a.attempt}: claimed {when(a.claimed_at)}, finished {when(a.finished_at)}, "
            f"return code {'-' if a.return_code is None else a.return_code}, {a.outcome or 'running'}"
            for a in detail.attempts
        ],
        f"  audit ({len(detail.audit)})",
        *[f"    {when(e.at)} {e.actor_name} {e.action}" + (f": {e.reason}" if e.reason else "") for e in detail.audit],
    ]
    if note := job.schedule_note():
        lines.append(f"  note          {note}")
    return lines


class Command(BaseCommand):
    help = (
        "Operator commands on workflow jobs: start|pause|reset|disable|enable SPOOL [GENERATION] (start and reset "
        "also --at TIME), add SPOOL STATE [--at TIME], schedule ID TIME, comment ID TEXT, show ID; for Administrators "
        "reload [SPOOL ...], shutdown, resume-scheduler. A command the job's status does not allow is refused with that status."
    )

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        for name in SPOOL_COMMANDS:
            p = sub.add_parser(name, help=f"{name} the spool's jobs, or one generation's")
            p.add_argument("spool")
            p.add_argument("generation", nargs="?", type=int)
            if name in TIMED_COMMANDS:
                p.add_argument("--at", type=cli_instant, default=None, help=f"Waiting at this time instead of now ({AT_HELP})")
            add_actor_arguments(p)
        p = sub.add_parser("add", help="a new job for the spool's next generation at STATE, in Pause")
        p.add_argument("spool")
        p.add_argument("state", type=int)
        p.add_argument("--at", type=cli_instant, default=None, help=f"its timestamp ({AT_HELP}); default now")
        add_actor_arguments(p)
        p = sub.add_parser("schedule", help="a new timestamp for job ID (its status stays)")
        p.add_argument("id", type=int)
        p.add_argument("timestamp", type=cli_instant, help=AT_HELP)
        add_actor_arguments(p)
        p = sub.add_parser("comment", help="set job ID's comment")
        p.add_argument("id", type=int)
        p.add_argument("text")
        add_actor_arguments(p)
        p = sub.add_parser("show", help="job ID in full: command as run, return code, output, attempts, waiting_for, audit")
        p.add_argument("id", type=int)
        clock.add_now_argument(p)
        p = sub.add_parser("reload", help="read the spools' workflow files again")
        p.add_argument("spools", nargs="*", help="only these spools")
        add_actor_arguments(p)
        add_actor_arguments(sub.add_parser("shutdown", help="shut the scheduler down: no job is started, running jobs finish"))
        # `resume` as the API spells it (/scheduler/resume/); the name is resume-scheduler
        add_actor_arguments(sub.add_parser("resume-scheduler", aliases=["resume"], help="start dispatching again after a shutdown"))

    def handle(self, *args, command: str, **options) -> None:
        clock.apply_now_option(options)
        try:
            if command == "show":
                lines = detail_lines(job_detail(options["id"]))
            else:
                command = "resume-scheduler" if command == "resume" else command
                actor = cli_actor(options.pop("user"))
                handler = getattr(self, "do_" + command.replace("-", "_"), None) or self.do_spool_command
                lines = handler(command=command, actor=actor, **options)
            for line in lines:
                self.stdout.write(line)
        except Job.DoesNotExist:
            raise CommandError(f"no job {options.get('id')}") from None
        except (JobConflict, InvalidInput, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None

    def do_spool_command(self, *, command, actor, reason, spool, generation, at=None, **options):
        report = spool_jobs_command(command=command, spool=spool, generation=generation, at=at, actor=actor, reason=reason)
        for exc in report.refused:
            self.stderr.write(str(exc))
        if not report.changed:
            held = ", ".join(f"{status} ({count})" for status, count in report.statuses.items()) or "none"
            raise CommandError(f"{command}: no job of spool {spool} allows it; its jobs are {held}")
        return [describe(job) for job in report.changed]

    def do_add(self, *, actor, reason, spool, state, at, **options):
        return [describe(job_add(spool=spool, state=state, at=at, actor=actor, reason=reason))]

    def do_schedule(self, *, actor, reason, id, timestamp, **options):
        job = job_schedule(job=id, timestamp=timestamp, actor=actor, reason=reason)
        return [describe(job), *([note] if (note := job.schedule_note()) else [])]

    def do_comment(self, *, actor, reason, id, text, **options):
        job = job_comment(job=id, comment=text, actor=actor, reason=reason)
        return [f"job {job.id}: comment set"]

    def do_reload(self, *, actor, reason, spools, **options):
        chosen = list(Spool.objects.filter(name__in=spools)) if spools else None
        unknown = sorted(set(spools) - {spool.name for spool in chosen or ()})
        if unknown:
            raise CommandError(f"no spool named {', '.join(unknown)}")
        report = workflows_reload(actor=actor, spools=chosen, reason=reason)
        if report.refused:
            raise CommandError("\n".join(report.lines()))
        return report.lines()

    def do_shutdown(self, *, actor, reason, **options):
        scheduler_shutdown(actor=actor, reason=reason)
        return ["scheduler shut down: no job is started; running jobs finish"]

    def do_resume_scheduler(self, *, actor, reason, **options):
        scheduler_resume(actor=actor, reason=reason)
        return ["scheduler running"]
