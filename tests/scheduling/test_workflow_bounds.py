"""DOMAIN §5: a workflow file's numbers are bounded and its lines readable, checked when it loads, refused naming section, key, value and line."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pytest
from django.core.management import CommandError, call_command

from scheduling.workflows.ini import FILE_MAX_BYTES
from scheduling.workflows.models import Spool
from scheduling.workflows.services import InvalidInput, workflow_load
from scheduling.workflows.workflow import Step, WorkflowError, parse_workflow
from tests.scheduling.conftest import TEST_ACTOR, refused

TOO_BIG = [
    ("[1000000]\ncommand=true\n", "1000000", "", "", "from 1 to 999999"),
    ("[0]\ncommand=true\n", "0", "", "", "from 1 to 999999"),
    ("[1]\ncommand=true\nnext=2147483648\n", "1", "next", "2147483648", "from 1 to 999999"),
    ("[1]\ncommand=true\nerrornext=0\n", "1", "errornext", "0", "from 1 to 999999"),
    ("[1]\ncommand=true\nnew=" + "9" * 5000 + "\n", "1", "new", "9" * 5000, "from 1 to 999999"),
    ("[1]\ncommand=true\nfinalizeNext=1\nfinalizeAfterDays=800000\n", "1", "finalizeAfterDays", "800000", "at most 3650"),
    ("[1]\ncommand=true\ndelay=31d\n", "1", "delay", "31d", "at most 30 days"),
    ("[1]\ncommand=true\ndelay=43201\n", "1", "delay", "43201", "at most 30 days"),  # bare minutes
    ("[1]\ncommand=true\ndelay=" + "9" * 400 + "s\n", "1", "delay", "9" * 400 + "s", "at most 30 days"),
    ("[1]\ncommand=true\nretries=10001\n", "1", "retries", "10001", "at most 10000"),
    ("[1]\ncommand=true\nparallel=99999999999999999999\n", "1", "parallel", "99999999999999999999", "at most 10000"),
    ("[1]\ncommand=true\nretries=-3\n", "1", "retries", "-3", "whole number"),
    ("[1]\ncommand=true\nretries=\u0663\n", "1", "retries", "\u0663", "whole number"),  # an Arabic-Indic 3
    ("[1]\ncommand=true\ntext=" + "x" * 201 + "\n", "1", "text", "x" * 201, "at most 200 characters"),
    ("[1]\ncommand=run " + "a" * 5000 + "\n", "1", "command", "run " + "a" * 5000, "at most 4096 characters"),
]


@pytest.mark.parametrize(("text", "section", "key", "value", "reason"), TOO_BIG)
def test_a_number_out_of_bounds_is_refused_naming_section_key_value_and_line(text, section, key, value, reason):
    problem, refusal = refused(text, source="big.ini")
    assert (problem.section, problem.key, problem.value, problem.line) == (section, key, value, where(text, key, value))
    assert reason in problem.reason and len(str(refusal)) < 1000  # a huge value is quoted, not copied whole


def where(text: str, key: str, value: str) -> int:
    """The line of ``key=value``, or 1 (the section header) for a problem of the section."""
    return text.splitlines().index(f"{key}={value}") + 1 if key else 1


def test_the_bounds_themselves_load():
    text = (
        "[999999]\ncommand=true\nnext=1\nretries=10000\nparallel=10000\ndelay=30d\nfinalizeNext=1\nfinalizeAfterDays=3650\n"
        "text=" + "x" * 200 + "\n[1]\ncommand=true\ndelay=43200\n"
    )
    workflow = parse_workflow(text)
    last = workflow.step(999999)
    assert (last.retries, last.parallel, last.delay_seconds, last.finalize_after_days) == (10000, 10000, 30 * 86400, 3650)
    assert workflow.step(1).delay_seconds == 30 * 86400


@pytest.mark.parametrize(
    ("text", "line", "section", "key", "reason"),
    [
        ("[1]\ncommand=true\nnext\n  2\n", 4, "1", "next", "has no value"),  # configparser crashed here
        ("command=true\n[1]\ncommand=true\n", 1, "-", "", "before the first [section]"),
        ("[1]\ncommand=true\n= 5\n", 3, "1", "", "no key"),
        ("[1]\ncommand=true\n[1]\ncommand=false\n", 3, "1", "", "the section appears twice"),
        ("[1]\ncommand=true\ncommand=false\n", 3, "1", "command", "the key appears twice"),
        ("[1]\ncommand=true\x00\n", 2, "1", "", "control character U+0000"),
    ],
)
def test_a_line_that_cannot_be_read_is_refused_with_its_number(text, line, section, key, reason):
    problem, refusal = refused(text)
    assert (problem.line, problem.section, problem.key) == (line, section, key)
    assert reason in problem.reason and f"line {line}: [{section}]" in str(refusal)


def test_an_indented_line_still_continues_a_value_as_before():
    step = parse_workflow("[1]\ncommand=bin/run\n  --fast\n# a comment ends the value\ntext=Run\n").step(1)
    assert (step.argv(spool="s", generation=1), step.text) == (["bin/run", "--fast"], "Run")


def test_a_file_of_exactly_one_mebibyte_loads_and_one_byte_more_is_refused(db, tmp_path):
    head = b"[1]\ncommand=true\n"
    path = tmp_path / "big.ini"
    path.write_bytes(head + b"#" * (FILE_MAX_BYTES - len(head) - 1) + b"\n")
    assert workflow_load(spool_name="big", path=str(path), actor=TEST_ACTOR).changed

    path.write_bytes(head + b"#" * (FILE_MAX_BYTES - len(head)) + b"\n")
    with pytest.raises(WorkflowError, match="larger than 1048576 bytes"):
        workflow_load(spool_name="big", path=str(path), actor=TEST_ACTOR)
    assert Spool.objects.get(name="big").workflow.number == 1


def test_dev_zero_and_a_directory_are_refused_without_reading_them(db, tmp_path):
    for path in ("/dev/zero", str(tmp_path)):
        with pytest.raises(WorkflowError, match="not a regular file"):
            workflow_load(spool_name="dev", path=path, actor=TEST_ACTOR)
    with pytest.raises(CommandError, match="not a regular file"):
        call_command("load_workflow", "dev", "/dev/zero")
    assert not Spool.objects.exists()


def test_a_fifo_nobody_writes_to_is_refused_without_blocking(db, tmp_path):
    fifo = tmp_path / "workflow.ini"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            workflow_load(spool_name="fifo", path=str(fifo), actor=TEST_ACTOR)
        except BaseException as exc:  # noqa: BLE001  - handed to the test's thread
            outcome.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(timeout=30)
    if loader.is_alive():  # unblock the reader so the test ends, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("loading a FIFO blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], WorkflowError) and "not a regular file" in str(outcome[0])


def test_a_binary_file_is_refused_naming_the_lines_with_control_characters(db, tmp_path):
    binary = tmp_path / "binary.ini"
    binary.write_bytes(b"[1]\ncommand=true\n\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(WorkflowError, match="control character") as caught:
        workflow_load(spool_name="binary", path=str(binary), actor=TEST_ACTOR)
    assert {p.line for p in caught.value.problems} == {4, 5}  # line 3, byte 0x89, is Latin-1 text


@pytest.mark.parametrize("path", ["", "x" * 501, "bad\x00.ini"])
def test_a_path_no_spool_can_hold_is_refused_as_bad_input(db, path):
    with pytest.raises(InvalidInput) as caught:
        workflow_load(spool_name="paths", path=path, actor=TEST_ACTOR)
    assert caught.value.field == "file"


def test_a_delay_stored_before_the_bound_waits_the_bound_instead_of_overflowing():
    old = Step.from_json({"number": 1, "command": "true", "next": 1, "delay_seconds": 1e300})
    assert old.rerun_delay() == dt.timedelta(days=30)
