"""The INI reader of workflow files: bytes to sections, or problems naming their line.

Pure code: no Django, no database. It reads exactly the syntax Python's
configparser read for these files (comments, ``=`` or ``:``, bare keys,
indented continuation lines, any section header), so existing files load as
they are; unlike configparser it refuses what it cannot read with a line
number instead of crashing, never reads past ``FILE_MAX_BYTES`` and never
blocks on a device or a FIFO.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

# A workflow file is a page of text; anything bigger is a mistake (a log, a dump, /dev/zero).
FILE_MAX_BYTES = 1024 * 1024
# A refusal quotes values and lists problems, but an audit row or an API answer stays readable.
_SHOWN_VALUE_CHARS = 80
_SHOWN_PROBLEMS = 50

# What no text file holds: C0 controls other than the whitespace ones, DEL, and lone surrogates.
# (NUL would also fail later: PostgreSQL refuses it in text, the kernel in a command's arguments.)
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f\ud800-\udfff]")
_HEADER = re.compile(r"\[(?P<header>.+)\]")  # configparser's: [1] ; a comment is section 1
_NON_SPACE = re.compile(r"\S")
_COMMENT_PREFIXES = ("#", ";")


@dataclass(frozen=True)
class Problem:
    """One reason a workflow file is refused: its section, key and value, and the line when known."""

    section: str
    key: str
    value: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"[{self.section}]" + (f" {self.key}" if self.key else "")
        shown = f" = {_shown(self.value)}" if self.key or self.value else ""
        at = f"line {self.line}: " if self.line else ""
        return f"{at}{where}{shown}: {self.reason}"


def _shown(value: str) -> str:
    if len(value) <= _SHOWN_VALUE_CHARS:
        return repr(value)
    return f"{value[:_SHOWN_VALUE_CHARS]!r}... ({len(value)} characters)"


def problems_text(problems: list[Problem]) -> str:
    """One line per problem, the first few of a very bad file and how many more there are."""
    lines = [f"  {p}" for p in problems[:_SHOWN_PROBLEMS]]
    if len(problems) > _SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - _SHOWN_PROBLEMS} more")
    return "\n".join(lines)


class IniError(ValueError):
    """The text is not a readable workflow file; ``problems`` say where."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(problems_text(problems))


@dataclass
class IniEntry:
    key: str  # as written
    value: str | None  # None: a bare key, no '=' or ':'
    line: int
    more: list[str] = field(default_factory=list)  # continuation lines, each stripped

    @property
    def text(self) -> str:
        """The value as configparser gave it: continuation lines joined by newlines."""
        if self.value is None:
            return ""
        return "\n".join([self.value, *self.more]).rstrip()


@dataclass
class IniSection:
    name: str  # between the brackets, as written
    line: int
    entries: list[IniEntry] = field(default_factory=list)


def file_text(path: Path) -> str:
    """The text of a regular file of at most FILE_MAX_BYTES: UTF-8 (a BOM allowed), else Latin-1.

    Raises IniError for a file that is not regular or too big, OSError when it
    cannot be opened. A FIFO is opened without blocking and refused.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise IniError([Problem("-", "", "", "not a regular file (a device, a FIFO or a directory)")])
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # replaced between the check and the open: fstat sees it
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IniError([Problem("-", "", "", "not a regular file (a device, a FIFO or a directory)")])
        raw = stream.read(FILE_MAX_BYTES + 1)
    if len(raw) > FILE_MAX_BYTES:
        raise IniError([Problem("-", "", "", f"the file is larger than {FILE_MAX_BYTES} bytes (1 MiB)")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Files written on older systems carry Latin-1 comments; they must load as they are.
        return raw.decode("latin-1")


class _Reader:
    """configparser's reading rules, line by line, with a problem for each line it cannot read."""

    def __init__(self) -> None:
        self.sections: list[IniSection] = []
        self.names: set[str] = set()
        self.problems: list[Problem] = []
        self.section: IniSection | None = None
        self.entry: IniEntry | None = None  # the entry an indented line continues
        self.keys: set[str] = set()  # of the current section
        self.indent = 0

    def problem(self, number: int, reason: str, *, key: str = "", value: str = "") -> None:
        section = self.section.name if self.section else "-"
        self.problems.append(Problem(section, key, value, reason, number))

    def line(self, number: int, line: str) -> None:
        if control := _CONTROL.search(line):
            self.problem(number, f"a control character U+{ord(control.group()):04X}: not a text file")
            self.entry = None
            return
        stripped = line.strip()
        if not stripped or stripped.startswith(_COMMENT_PREFIXES):
            self.indent = sys.maxsize  # a blank or comment line ends a value
            return
        indent = _NON_SPACE.search(line).start()
        if self.entry is not None and indent > self.indent:
            self.continuation(number, stripped)
            return
        self.indent = indent
        if header := _HEADER.match(stripped):
            self.header(number, header.group("header"))
        elif self.section is None:
            self.problem(number, "a line before the first [section]", value=stripped)
        else:
            self.option(number, stripped)

    def continuation(self, number: int, stripped: str) -> None:
        if self.entry.value is None:
            self.problem(
                number,
                f"an indented line continues the key {self.entry.key!r}, which has no value (write key = value)",
                key=self.entry.key,
                value=stripped,
            )
            return
        self.entry.more.append(stripped)

    def header(self, number: int, name: str) -> None:
        self.entry = None
        self.keys = set()
        if name in self.names:
            self.section = IniSection(name, number)  # its keys are read, and checked, but not kept
            self.problem(number, "the section appears twice")
            return
        self.names.add(name)
        self.section = IniSection(name, number)
        self.sections.append(self.section)

    def option(self, number: int, stripped: str) -> None:
        # The first '=' or ':' ends the key (found by position: a regular expression backtracks on long lines).
        delimiters = [at for at in (stripped.find("="), stripped.find(":")) if at >= 0]
        if delimiters:
            at = min(delimiters)
            key, value = stripped[:at].rstrip(), stripped[at + 1 :].strip()
        else:
            key, value = stripped, None
        if not key:
            self.entry = None
            self.problem(number, "a line with a value but no key", value=value or "")
            return
        if key in self.keys:
            self.problem(number, "the key appears twice in this section", key=key, value=value or "")
        self.keys.add(key)
        self.entry = IniEntry(key, value, number)
        self.section.entries.append(self.entry)


def ini_read(text: str) -> list[IniSection]:
    """The sections of an INI text in file order; IniError names every line that cannot be read."""
    reader = _Reader()
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        reader.line(number, line)
    if reader.problems:
        raise IniError(reader.problems)
    return reader.sections
