"""Workflow files (DOMAIN §3, §5): parse, validate and describe the steps of a spool.

Pure code: no Django, no database. A workflow file is INI, one section per step
named by its number; ``parse_workflow`` refuses a bad file whole, naming every
bad section, key and value (and its line), so the workflow in force never
changes half-way. Every number is bounded here (DOMAIN §5): a file that loads
never fails at run time for a number too big for the database or the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shlex
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import NamedTuple

from scheduling.workflows.ini import IniError, IniSection, Problem, ini_read, problems_text

# The keys of DOMAIN §3, spelled as the table spells them; files may use any case.
KEYS = (
    "command",
    "text",
    "next",
    "errornext",
    "retries",
    "delay",
    "new",
    "weekdays",
    "mintime",
    "maxtime",
    "parallel",
    "finalizeNext",
    "finalizeAfterDays",
)
_KEY_BY_LOWER = {key.lower(): key for key in KEYS}
STEP_REFERENCES = ("next", "errornext", "new", "finalizeNext")

# A return code 9 means "data not there yet": the step is tried again after the delay.
RETRY_RETURN_CODE = 9
# The delay between such attempts when the step names none: a step polling for data
# must not spin, so a missing delay is one minute, not zero.
DEFAULT_DELAY_SECONDS = 60
# A step that runs again in the same generation (a retry, a loop) waits at least this long,
# whatever its delay: a step whose `next` is itself cannot write attempts as fast as it can run.
RERUN_FLOOR_SECONDS = 1

# DOMAIN §5: the numbers a file may hold, checked at load.
STEP_MIN, STEP_MAX = 1, 999_999
DELAY_MAX_SECONDS = 30 * 86400
FINALIZE_AFTER_DAYS_MAX = 3650
RETRIES_MAX = PARALLEL_MAX = 10_000
# What the database and the kernel hold: a job's Type is 200 characters; 4096 bytes of arguments
# is what POSIX guarantees every system runs (_POSIX_ARG_MAX).
TEXT_MAX_CHARS = 200
COMMAND_MAX_CHARS = 4096

SPOOL_NAME_PATTERN = r"[A-Za-z0-9._-]+"
_SPOOL_NAME = re.compile(SPOOL_NAME_PATTERN)
# ASCII digits only: int() reads other scripts' digits too, and a step number is what the monitor shows.
_DIGITS = re.compile(r"[0-9]+")
_DELAY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)$", re.IGNORECASE)
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 60}
# <Spoolname> and <Generation> in any case; %s and %06d exactly (%S and %D mean other things to date(1)).
_PLACEHOLDER = re.compile(r"%%|%s|%06d|(?i:<Spoolname>|<Generation>)")
# An inline comment after a value (or in place of one) starts at a ; or # after whitespace. Stripped from
# the typed keys only: a command or a text may hold either character. (Found with a look-behind, which
# does not backtrack over a long run of blanks.)
_INLINE_COMMENT = re.compile(r"(?:^|(?<=\s))[;#]")
_TYPED_KEYS = frozenset(KEYS) - {"command", "text"}


def spool_name_is_valid(name: str) -> bool:
    """Letters, digits, '.', '_', '-'; not '.' or '-' first, so a name is never '..' nor read as an option."""
    return bool(_SPOOL_NAME.fullmatch(name or "")) and name[0] not in ".-"


class WorkflowError(ValueError):
    """The file is refused whole; ``problems`` names each bad section, key and value (and line)."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"workflow file {source} refused" if source else "workflow refused"
        super().__init__(head + ":\n" + problems_text(problems))


@dataclass(frozen=True)
class Step:
    """One section of a workflow file, its values checked and typed."""

    number: int
    command: str
    text: str = ""
    next: int | None = None
    errornext: int | None = None
    retries: int | None = None  # None: unlimited
    delay_seconds: float = DEFAULT_DELAY_SECONDS
    new: int | None = None
    weekdays: tuple[int, ...] | None = None  # ISO weekdays, 1 = Monday; None: every day
    mintime: str | None = None  # "HH:MM"
    maxtime: str | None = None
    parallel: int | None = None  # None: no limit
    finalize_next: int | None = None
    finalize_after_days: int | None = None

    @property
    def label(self) -> str:
        """What the monitor shows as the job's Type."""
        return self.text or f"step {self.number}"

    def argv(self, *, spool: str, generation: int) -> list[str]:
        """The program and its arguments, placeholders filled in each argument.

        The command is split first and substituted after, so whatever a value
        holds it stays inside its own argument; no shell ever sees it. As in
        printf, ``%%`` is a literal ``%``.
        """
        generation_text = f"{generation:06d}"
        values = {"%%": "%", "%s": spool, "<spoolname>": spool, "%06d": generation_text, "<generation>": generation_text}
        return [_PLACEHOLDER.sub(lambda m: values[m.group(0).lower()], arg) for arg in shlex.split(self.command)]

    def weekday_allows(self, local: dt.datetime) -> bool:
        return self.weekdays is None or local.isoweekday() in self.weekdays

    def time_window_allows(self, local: dt.datetime) -> bool:
        """From mintime, not after maxtime, to the minute; mintime after maxtime spans midnight."""
        now = local.strftime("%H:%M")
        low, high = self.mintime, self.maxtime
        if low and high and low > high:
            return now >= low or now <= high
        return (low is None or now >= low) and (high is None or now <= high)

    # The gates of DOMAIN §3, each naming itself as `waiting_for` shows it (DOMAIN §5); the
    # dispatcher asks the same methods, so what holds a job and what the monitor says never differ.

    def weekday_gate(self, local: dt.datetime) -> str | None:
        """``weekdays mon-fri`` while today is not one of the step's days; None when it is."""
        return None if self.weekday_allows(local) else f"weekdays {weekdays_text(self.weekdays or ())}"

    def time_window_gate(self, local: dt.datetime) -> str | None:
        """``mintime 06:00`` before the step's hours, ``maxtime 22:00`` after them; None inside them."""
        if self.time_window_allows(local):
            return None
        low, high = self.mintime, self.maxtime
        # Outside a window that spans midnight, or before mintime, the job waits for mintime.
        if low and (not high or low > high or local.strftime("%H:%M") < low):
            return f"mintime {low}"
        return f"maxtime {high}"

    def parallel_full(self, running: int) -> bool:
        """``running`` jobs of this step (across all spools) leave no slot."""
        return self.parallel is not None and running >= self.parallel

    def parallel_gate(self, running_ids: list[int]) -> str | None:
        """``parallel 2: jobs 12, 15 running`` while the step's slots are taken; None while one is free."""
        if not self.parallel_full(len(running_ids)):
            return None
        return f"parallel {self.parallel}: jobs {', '.join(str(i) for i in sorted(running_ids))} running"

    def delay(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.delay_seconds)

    def rerun_delay(self) -> dt.timedelta:
        """The wait before this step runs again in the same generation (DOMAIN §5): its delay, never less than the floor.

        Never more than the bound either: a version stored before delays were bounded must not overflow the clock.
        """
        return dt.timedelta(seconds=min(max(self.delay_seconds, RERUN_FLOOR_SECONDS), DELAY_MAX_SECONDS))

    def as_json(self) -> dict:
        data = asdict(self)
        data["weekdays"] = list(self.weekdays) if self.weekdays is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> Step:
        data = dict(data)
        if data.get("weekdays") is not None:
            data["weekdays"] = tuple(data["weekdays"])
        return cls(**data)


@dataclass(frozen=True)
class Workflow:
    steps: dict[int, Step] = field(default_factory=dict)

    def step(self, number: int) -> Step | None:
        return self.steps.get(number)

    @cached_property
    def gated_steps(self) -> tuple[Step, ...]:
        """The steps that have a gate (weekdays, mintime/maxtime, parallel): the only ones a claim must check."""
        return tuple(s for s in self.steps.values() if s.weekdays is not None or s.mintime or s.maxtime or s.parallel is not None)

    def as_json(self) -> list[dict]:
        return [step.as_json() for step in self.steps.values()]

    @classmethod
    def from_json(cls, data: list[dict]) -> Workflow:
        steps = [Step.from_json(item) for item in data]
        return cls({step.number: step for step in steps})


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_delay(value: str) -> float:
    """``30s``, ``5m``, ``2h``, ``1d``; a bare number is minutes; at most 30 days."""
    match = _DELAY.match(value.strip())
    if not match:
        raise ValueError("a delay is a number with s, m, h or d (minutes when bare)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if not seconds <= DELAY_MAX_SECONDS:  # a thousand-digit number is inf: refused too
        raise ValueError(f"a delay is at most 30 days ({DELAY_MAX_SECONDS}s)")
    return seconds


def parse_time(value: str) -> str:
    match = _TIME.match(value.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError("a time is HH:MM, from 00:00 to 23:59")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _day(token: str) -> int:
    token = token.strip().lower()
    if re.fullmatch("[1-7]", token):
        return int(token)
    for number, name in enumerate(_DAY_NAMES, start=1):
        if len(token) >= 3 and name.startswith(token):  # mon, mond..., monday
            return number
    raise ValueError(f"{token!r} is not a day (1-7, 1 = Monday, or mon..sun)")


def weekdays_text(days: tuple[int, ...]) -> str:
    """ISO weekdays as a file would name them: (1, 2, 3, 4, 5) is ``mon-fri``, (1, 3, 5) ``mon,wed,fri``."""
    names = [name[:3] for name in _DAY_NAMES]
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if len(run) > 2:
            parts.append(f"{names[run[0] - 1]}-{names[run[-1] - 1]}")
        else:
            parts.extend(names[day - 1] for day in run)
    return ",".join(parts)


def parse_weekdays(value: str) -> tuple[int, ...]:
    """``1-5``, ``mon-fri``, ``mon,wed,fri``, ``1,3-4,sun``; a range may wrap (``fri-mon``)."""
    days: set[int] = set()
    items = [item.strip() for item in value.split(",")]
    if not value.strip() or any(not item for item in items):
        raise ValueError("weekdays is a comma list of days or ranges, e.g. 1-5 or mon,wed,fri")
    for item in items:
        if "-" in item:
            first, _, last = item.partition("-")
            start, end = _day(first), _day(last)
            span = (end - start) % 7
            days.update((start - 1 + offset) % 7 + 1 for offset in range(span + 1))
        else:
            days.add(_day(item))
    return tuple(sorted(days))


def _integer(value: str, *, minimum: int, maximum: int) -> int:
    text = value.strip()
    # Compared as text first: int() of a thousand digits is slow, and of 4301 refused by Python.
    if not _DIGITS.fullmatch(text) or len(text.lstrip("0")) > len(str(maximum)) or not minimum <= int(text) <= maximum:
        raise ValueError(f"a whole number of at least {minimum} and at most {maximum}")
    return int(text)


def _step_number(value: str) -> int:
    try:
        return _integer(value, minimum=STEP_MIN, maximum=STEP_MAX)
    except ValueError:
        raise ValueError(f"a step number, from {STEP_MIN} to {STEP_MAX}") from None


class _Value(NamedTuple):
    written: str  # the key as the file writes it, so a refusal quotes it exactly
    value: str
    line: int | None


# [DEFAULT] is a plain section merged by hand, so a key a step writes in another case overrides
# the default's instead of clashing with it.
_DEFAULT_SECTION = "DEFAULT"


def _section_values(section: IniSection, problems: list[Problem]) -> dict[str, _Value]:
    """canonical key -> its value, unknown keys and one key written twice (in two cases) refused."""
    values: dict[str, _Value] = {}
    for entry in section.entries:
        canonical = _KEY_BY_LOWER.get(entry.key.lower())
        value = entry.text.strip()
        if canonical is None:
            problems.append(Problem(section.name, entry.key, value, "unknown key", entry.line))
            continue
        if canonical in values:
            reason = f"the key appears twice in this section (also as {values[canonical].written})"
            problems.append(Problem(section.name, entry.key, value, reason, entry.line))
            continue
        if canonical in _TYPED_KEYS and (comment := _INLINE_COMMENT.search(value)):
            value = value[: comment.start()].strip()
        values[canonical] = _Value(entry.key, value, entry.line)
    return values


def _step_sections(sections: list[IniSection], problems: list[Problem]) -> dict[int, tuple[IniSection, dict[str, _Value]]]:
    """step number -> its section and values, [DEFAULT]'s merged in; bad section names refused."""
    defaults: dict[str, _Value] = {}
    for section in sections:
        if section.name.strip().upper() == _DEFAULT_SECTION:
            defaults |= _section_values(section, problems)
    steps: dict[int, tuple[IniSection, dict[str, _Value]]] = {}
    for section in sections:
        name = section.name.strip()
        if name.upper() == _DEFAULT_SECTION:
            continue
        if not _DIGITS.fullmatch(name):
            problems.append(Problem(section.name, "", "", "a section name is a step number", section.line))
            continue
        try:
            number = _step_number(name)
        except ValueError as exc:
            problems.append(Problem(section.name, "", "", str(exc), section.line))
            continue
        if number in steps:  # [10] and [010] are the same step
            problems.append(Problem(section.name, "", "", f"step {number} appears twice", section.line))
            continue
        steps[number] = (section, defaults | _section_values(section, problems))
    return steps


def parse_workflow(text: str, *, source: str = "") -> Workflow:
    """Parse and check a workflow file; raise WorkflowError naming every problem (and nothing else).

    A [DEFAULT] section gives every step its keys; a step's own key overrides it.
    """
    try:
        sections = ini_read(text)
    except IniError as exc:
        raise WorkflowError(exc.problems, source) from None
    problems: list[Problem] = []
    raw_steps = _step_sections(sections, problems)
    if not raw_steps and not problems:
        problems.append(Problem("-", "", "", "the file has no step"))
    steps = {}
    for number, (section, values) in raw_steps.items():
        step = _build_step(number, section.name, values, set(raw_steps), problems)
        if step is not None:
            steps[number] = step
    if problems:
        raise WorkflowError(problems, source)
    return Workflow(dict(sorted(steps.items())))


def _command_problem(command: str) -> str | None:
    if not command:
        return "every step needs a command"
    if len(command) > COMMAND_MAX_CHARS:
        return f"a command is at most {COMMAND_MAX_CHARS} characters"
    try:
        if shlex.split(command):
            return None
    except ValueError:
        pass
    return "the command cannot be split into arguments"


def _build_step(number: int, section: str, values: dict[str, _Value], numbers: set[int], problems: list[Problem]) -> Step | None:
    before = len(problems)
    typed: dict[str, object] = {}

    def problem(key: str, reason: str) -> None:
        written, value, line = values.get(key, _Value(key, "", None))
        problems.append(Problem(section, written, value, reason, line))

    def check(key: str, convert) -> None:
        if key not in values or values[key].value == "":
            return
        try:
            typed[key] = convert(values[key].value)
        except ValueError as exc:
            problem(key, str(exc))

    command = values["command"].value if "command" in values else ""
    if why := _command_problem(command):
        problem("command", why)
    text = values["text"].value if "text" in values else ""
    if len(text) > TEXT_MAX_CHARS:
        problem("text", f"a step's text (the job's Type) is at most {TEXT_MAX_CHARS} characters")
    for key in STEP_REFERENCES:
        check(key, _step_number)
        target = typed.get(key)
        if target is not None and target not in numbers:
            problem(key, f"names step {target}, which is not in this file")
    # 0, like empty, means no limit: files written for a scheduler that tested `if retries:` load as they are.
    check("retries", lambda v: _integer(v, minimum=0, maximum=RETRIES_MAX) or None)
    check("parallel", lambda v: _integer(v, minimum=0, maximum=PARALLEL_MAX) or None)
    check("finalizeAfterDays", lambda v: _integer(v, minimum=0, maximum=FINALIZE_AFTER_DAYS_MAX))
    check("delay", parse_delay)
    check("weekdays", parse_weekdays)
    check("mintime", parse_time)
    check("maxtime", parse_time)
    # finalizeNext alone finalizes at the first check after OK (0 days); finalizeAfterDays alone (a
    # [DEFAULT] for the steps that name a finalizeNext) finalizes nothing. Neither refuses a file.
    if "finalizeNext" in typed:
        typed.setdefault("finalizeAfterDays", 0)
    else:
        typed.pop("finalizeAfterDays", None)
    if len(problems) > before:
        return None
    return Step(
        number=number,
        command=command,
        text=text,
        next=typed.get("next"),
        errornext=typed.get("errornext"),
        retries=typed.get("retries"),
        delay_seconds=typed.get("delay", DEFAULT_DELAY_SECONDS),
        new=typed.get("new"),
        weekdays=typed.get("weekdays"),
        mintime=typed.get("mintime"),
        maxtime=typed.get("maxtime"),
        parallel=typed.get("parallel"),
        finalize_next=typed.get("finalizeNext"),
        finalize_after_days=typed.get("finalizeAfterDays"),
    )
