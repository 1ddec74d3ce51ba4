"""The workflow parser fuzzed (DOMAIN §5): every file is loaded within the bounds or refused naming section, key and value.

Files are grown from the real grammar and then mutated: random keys in any case, numbers
huge, negative or in other scripts, unicode, indentation, continuation lines, missing or
repeated sections, comments, control characters, raw bytes. A loaded file is also run
through what the dispatcher and the worker do with its numbers, so none of them can fail
at run time. And wherever configparser (the reader before ours) read a text, ours reads
the same sections, keys and values: existing files load as they did.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.workflows.ini import FILE_MAX_BYTES, IniError, file_text, ini_read
from scheduling.workflows.workflow import (
    DELAY_MAX_SECONDS,
    FINALIZE_AFTER_DAYS_MAX,
    KEYS,
    PARALLEL_MAX,
    RETRIES_MAX,
    STEP_MAX,
    STEP_MIN,
    TEXT_MAX_CHARS,
    Workflow,
    WorkflowError,
    parse_workflow,
)

FAST = settings(max_examples=200, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
BIG = settings(max_examples=5000, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# --- files from the grammar, mutated --------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-3, max_value=30).map(str),
    st.sampled_from(["0", "1", "999999", "1000000", "2147483647", "2147483648", "9223372036854775808", "010", "-1", "+5", " 7 "]),
    st.integers(min_value=1, max_value=5000).map(lambda n: "9" * n),
    st.sampled_from(["\u0663", "\u0661\u0662", "\u00b2", "\uff11", "1_000", "1e3", "0x10", "nan", "inf", ""]),
)
DELAYS = st.one_of(
    st.tuples(NUMBERS, st.sampled_from(["", "s", "m", "h", "d", "S", "D", " m", "w", "ms"])).map("".join),
    st.sampled_from(["30d", "30.0001d", "43200", "43201", "2592000s", "1.5", "1.", ".5m", "1e400", "99999999999999999999d"]),
)
DAYS = st.sampled_from(["mon-fri", "1-5", "sat,sun", "fri-mon", "8", "0", "mon-fry", "1,,2", "Monday", "tu", "\u0663", "7-1", "-", ","])
TIMES = st.sampled_from(["06:00", "23:59", "24:00", "7:5", "07:60", "\u0660\u0667:00", "12:00:00", "", "noon"])
WORDS = st.text(min_size=0, max_size=30)
COMMANDS = st.one_of(
    st.sampled_from(["true", "bin/run %s %06d", "run <Spoolname> <GENERATION>", "sh -c 'exit 9'", "echo \"unclosed", "'", "%%", "x ; y # z"]),
    WORDS,
    st.integers(min_value=4000, max_value=5000).map(lambda n: "x" * n),
)
VALUES = {
    "command": COMMANDS,
    "text": st.one_of(WORDS, st.integers(min_value=195, max_value=205).map(lambda n: "t" * n)),
    "next": NUMBERS,
    "errornext": NUMBERS,
    "new": NUMBERS,
    "finalizeNext": NUMBERS,
    "retries": NUMBERS,
    "parallel": NUMBERS,
    "finalizeAfterDays": NUMBERS,
    "delay": DELAYS,
    "weekdays": DAYS,
    "mintime": TIMES,
    "maxtime": TIMES,
}
KEY_SPELLINGS = st.one_of(
    st.sampled_from(KEYS).flatmap(lambda k: st.sampled_from([k, k.lower(), k.upper(), k.capitalize(), f" {k}", f"{k} "])),
    st.text(min_size=0, max_size=12),
)


@st.composite
def lines_of_a_step(draw) -> list[str]:
    lines = []
    for key in draw(st.lists(KEY_SPELLINGS, max_size=8)):
        canonical = next((k for k in KEYS if k.lower() == key.strip().lower()), None)
        value = draw(VALUES[canonical] if canonical else WORDS)
        form = draw(st.sampled_from(["{k}={v}", "{k} = {v}", "{k}: {v}", "{k}", "{k}={v} ; note", "{k}={v} # note", "\t{k}={v}", "{k}=\n  {v}"]))
        lines.append(form.format(k=key, v=value))
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["  more", "\tmore", "", "; comment", "# comment", "   "])))
    return lines


@st.composite
def workflow_texts(draw) -> str:
    """A file of the grammar: [DEFAULT] and steps that mostly point at each other, then mutated."""
    numbers = draw(st.lists(st.one_of(st.integers(min_value=1, max_value=12).map(str), NUMBERS), min_size=0, max_size=5))
    lines: list[str] = []
    if draw(st.booleans()):
        lines += ["[DEFAULT]", *draw(lines_of_a_step())]
    for number in numbers:
        header = draw(st.sampled_from(["[{n}]", "[ {n} ]", "  [{n}]", "[{n}] ; step", "[{n}", "{n}]", "[[{n}]]"])).format(n=number)
        lines += [header, f"command={draw(COMMANDS)}", *draw(lines_of_a_step())]
    for _ in range(draw(st.integers(0, 3))):  # a mutation: any line anywhere
        junk = draw(st.one_of(WORDS, st.sampled_from(["=", ":", "[]", "[", "\x00", "\x1b[0m", "\ufeff", "\u2028", "\r", "\x85"])))
        lines.insert(draw(st.integers(0, len(lines))), junk)
    separator = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
    return draw(st.sampled_from(["", "\ufeff"])) + separator.join(lines) + draw(st.sampled_from(["", "\n"]))


ANY_TEXT = st.one_of(workflow_texts(), st.text(max_size=200), st.text(alphabet="[]=:;# \t\n1aA\\", max_size=80))


# --- the properties -----------------------------------------------------------------------------


def check_loaded(workflow: Workflow) -> None:
    """Within DOMAIN §5's bounds, and through everything the dispatcher and the worker compute from it."""
    now = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    for number, step in workflow.steps.items():
        assert STEP_MIN <= number <= STEP_MAX and step.number == number
        for target in (step.next, step.errornext, step.new, step.finalize_next):
            assert target is None or target in workflow.steps
        assert 0 <= step.delay_seconds <= DELAY_MAX_SECONDS
        assert step.retries is None or 1 <= step.retries <= RETRIES_MAX
        assert step.parallel is None or 1 <= step.parallel <= PARALLEL_MAX
        assert step.finalize_after_days is None or 0 <= step.finalize_after_days <= FINALIZE_AFTER_DAYS_MAX
        assert len(step.label) <= TEXT_MAX_CHARS
        assert step.argv(spool="spool", generation=999999) and now + step.rerun_delay() > now
        if step.finalize_after_days is not None:
            assert now - dt.timedelta(days=step.finalize_after_days) < now
        local = now.astimezone(dt.timezone(dt.timedelta(hours=1)))
        step.weekday_gate(local), step.time_window_gate(local), step.parallel_gate([1, 2])
    stored = json.loads(json.dumps(workflow.as_json(), allow_nan=False))
    assert Workflow.from_json(stored) == workflow


def check_refused(error: WorkflowError, text: str) -> None:
    """Each problem names a section of the file (or '-'), and its key and value as the file writes them."""
    assert error.problems and str(error)
    for problem in error.problems:
        assert problem.reason
        assert problem.section == "-" or f"[{problem.section}]" in text
        # A key the step lacks (a missing command) is named though the file cannot write it.
        assert not problem.key or problem.key in text or (problem.line is None and problem.value == "")
        assert problem.line is None or 1 <= problem.line <= text.count("\n") + 1


def loads_or_is_refused(text: str) -> None:
    try:
        workflow = parse_workflow(text, source="fuzz.ini")
    except WorkflowError as exc:
        check_refused(exc, text)
    else:
        check_loaded(workflow)


def configparser_sections(text: str) -> list | None:
    """What the reader before ours made of a text, or None where it refused (or crashed)."""
    parser = configparser.ConfigParser(
        interpolation=None, strict=True, empty_lines_in_values=False, allow_no_value=True, default_section="\0 no default"
    )
    parser.optionxform = str
    try:
        parser.read_string(text.removeprefix("\ufeff"))
    except (configparser.Error, AttributeError):
        return None
    return [(name, list(parser.items(name))) for name in parser.sections()]


def reads_as_configparser_did(text: str) -> None:
    before = configparser_sections(text)
    try:
        ours = [(s.name, [(e.key, None if e.value is None else e.text) for e in s.entries]) for s in ini_read(text)]
    except IniError as exc:
        # refused by both, or a control character configparser let through
        assert before is None or any("control character" in p.reason for p in exc.problems)
        return
    assert ours == before


def bytes_load_or_are_refused(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "workflow.ini"
        path.write_bytes(raw)
        text = file_text(path)
    loads_or_is_refused(text)


BYTES = st.one_of(st.binary(max_size=300), workflow_texts().map(lambda t: t.encode("utf-8")), workflow_texts().map(lambda t: t.encode("latin-1", "replace")))


# --- fast, in every run -------------------------------------------------------------------------


@FAST
@given(ANY_TEXT)
def test_every_fuzzed_file_is_loaded_within_bounds_or_refused_naming_where(text):
    loads_or_is_refused(text)


@FAST
@given(ANY_TEXT)
def test_every_fuzzed_file_reads_as_configparser_read_it(text):
    reads_as_configparser_did(text)


@FAST
@given(BYTES)
def test_any_bytes_in_a_file_are_loaded_or_refused(raw):
    bytes_load_or_are_refused(raw)


def test_a_huge_line_of_blanks_is_read_at_once(tmp_path):
    # Regular expressions that backtrack took hours over this (configparser's own, the old inline-comment one).
    text = "[1]\ncommand=true\nnext=1" + " " * 500_000 + "x ;\ntext=a" + " " * 500_000 + "b\n"
    with pytest.raises(WorkflowError, match="a step number"):
        parse_workflow(text)


# --- big, in the slow suite ----------------------------------------------------------------------


@pytest.mark.slow
@BIG
@given(ANY_TEXT)
def test_five_thousand_fuzzed_files_are_loaded_within_bounds_or_refused(text):
    loads_or_is_refused(text)
    reads_as_configparser_did(text)


@pytest.mark.slow
@BIG
@given(BYTES)
def test_five_thousand_fuzzed_byte_files_are_loaded_or_refused(raw):
    bytes_load_or_are_refused(raw)


@pytest.mark.slow
def test_thirty_thousand_steps_within_a_mebibyte_load():
    steps = "".join(f"[{n}]\ncommand=run %s\nnext={n + 1}\n" for n in range(1, 30_000))
    text = steps + "[30000]\ncommand=true\n"
    assert len(text.encode()) < FILE_MAX_BYTES
    assert len(parse_workflow(text).steps) == 30_000
