from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from portal.models import AuditEntry
from scheduling.workflows.models import Spool, WorkflowVersion
from scheduling.workflows.services import InvalidInput, workflow_load
from scheduling.workflows.workflow import WorkflowError, parse_delay, parse_weekdays, parse_workflow
from tests.scheduling.conftest import TEST_ACTOR, refused

EXAMPLE_CHAIN = """
    [10]
    text=Initialize
    command=bin/initialize %s %06d
    next=11
    new=10
    delay=15s

    [11]
    text=Prepare
    command=bin/prepare <Spoolname> <Generation>
    next=12

    [12]
    text=Archiving
    command=bin/archive %s %06d
    next=13
    errornext=15
    retries=3
    delay=2m
    parallel=2
    weekdays=mon-fri
    mintime=06:00
    maxtime=20:30

    [13]
    text=Protocol
    command=bin/protocol
    next=14

    [14]
    text=Cleanup
    command=bin/cleanup
    finalizeNext=16
    finalizeAfterDays=30

    [15]
    text=Delete
    command=bin/delete
    next=14

    [16]
    text=Purge
    command=bin/purge
"""


def test_example_chain_loads_with_every_key_meaning_what_it_says(load_spool):
    spool = load_spool(EXAMPLE_CHAIN, name="invoices")

    steps = spool.workflow.workflow.steps
    assert [(n, s.text, s.next, s.errornext) for n, s in steps.items()] == [
        (10, "Initialize", 11, None),
        (11, "Prepare", 12, None),
        (12, "Archiving", 13, 15),
        (13, "Protocol", 14, None),
        (14, "Cleanup", None, None),
        (15, "Delete", 14, None),
        (16, "Purge", None, None),
    ]
    assert steps[10].new == 10 and steps[10].delay() == dt.timedelta(seconds=15)
    archiving = steps[12]
    assert (archiving.retries, archiving.delay(), archiving.parallel) == (3, dt.timedelta(minutes=2), 2)
    assert (archiving.weekdays, archiving.mintime, archiving.maxtime) == ((1, 2, 3, 4, 5), "06:00", "20:30")
    assert (steps[14].finalize_next, steps[14].finalize_after_days) == (16, 30)
    assert steps[11].argv(spool="invoices", generation=7) == ["bin/prepare", "invoices", "000007"]
    assert steps[10].argv(spool="invoices", generation=7) == ["bin/initialize", "invoices", "000007"]


def test_loading_keeps_the_version_with_its_checksum_and_is_audited(load_spool):
    spool = load_spool(EXAMPLE_CHAIN, name="invoices")

    version = spool.workflow
    assert version.number == 1 and len(version.checksum) == 64
    assert "[12]" in version.text
    entry = AuditEntry.objects.get(action="workflow.load")
    assert entry.after["checksum"] == version.checksum and entry.actor_name == TEST_ACTOR


def test_loading_the_same_file_again_keeps_the_version(load_spool):
    load_spool(EXAMPLE_CHAIN, name="invoices")
    spool = load_spool(EXAMPLE_CHAIN, name="invoices")
    assert spool.workflow.number == 1
    assert WorkflowVersion.objects.count() == 1


def test_a_changed_file_becomes_the_next_version(load_spool):
    load_spool(EXAMPLE_CHAIN, name="invoices")
    spool = load_spool(EXAMPLE_CHAIN.replace("retries=3", "retries=5"), name="invoices")
    assert spool.workflow.number == 2
    assert spool.workflow.workflow.step(12).retries == 5


BAD_FILES = [
    ("[1]\ncommand=true\ncolour=blue\n", "1", "colour", "blue", "unknown key"),
    ("[1]\ncommand=true\nnext=2\n", "1", "next", "2", "names step 2, which is not in this file"),
    ("[1]\ncommand=true\nerrornext=7\n", "1", "errornext", "7", "names step 7"),
    ("[1]\ncommand=true\nnew=3\n", "1", "new", "3", "names step 3"),
    ("[1]\ncommand=true\nfinalizeNext=9\nfinalizeAfterDays=2\n", "1", "finalizeNext", "9", "names step 9"),
    ("[1]\ncommand=true\nmintime=25:00\n", "1", "mintime", "25:00", "HH:MM"),
    ("[1]\ncommand=true\nmaxtime=7pm\n", "1", "maxtime", "7pm", "HH:MM"),
    ("[1]\ncommand=true\nweekdays=mon-fry\n", "1", "weekdays", "mon-fry", "not a day"),
    ("[1]\ncommand=true\nweekdays=8\n", "1", "weekdays", "8", "not a day"),
    ("[1]\ncommand=true\ndelay=5 minutes\n", "1", "delay", "5 minutes", "a delay is a number"),
    ("[1]\ncommand=true\ndelay=-5\n", "1", "delay", "-5", "a delay is a number"),
    ("[1]\ncommand=true\nretries=often\n", "1", "retries", "often", "whole number"),
    ("[1]\ncommand=true\nparallel=-1\n", "1", "parallel", "-1", "whole number of at least 0"),
    ("[1]\ntext=no command\n", "1", "command", "", "every step needs a command"),
    ("[start]\ncommand=true\n", "start", "", "", "a section name is a step number"),
]


@pytest.mark.parametrize(("text", "section", "key", "value", "reason"), BAD_FILES)
def test_a_bad_file_is_refused_naming_section_key_and_value(text, section, key, value, reason):
    problem, refusal = refused(text, source="bad.ini")
    assert (problem.section, problem.key, problem.value) == (section, key, value)
    assert reason in problem.reason
    assert f"[{section}]" in str(refusal) and "bad.ini" in str(refusal)


def test_every_problem_of_a_file_is_named_at_once():
    text = "[1]\ncommand=true\nnext=4\nmintime=9\n[2]\ncommand=true\nflavour=x\n"
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text)
    assert {(p.section, p.key) for p in caught.value.problems} == {("1", "next"), ("1", "mintime"), ("2", "flavour")}


def test_a_refused_file_leaves_the_workflow_in_force(load_spool, write_workflow):
    spool = load_spool(EXAMPLE_CHAIN, name="invoices")
    bad = write_workflow(EXAMPLE_CHAIN.replace("errornext=15", "errornext=99"), "bad.ini")

    with pytest.raises(WorkflowError, match=r"\[12\] errornext = '99': names step 99"):
        workflow_load(spool_name="invoices", path=bad, actor=TEST_ACTOR)

    spool.refresh_from_db()
    assert spool.workflow.number == 1 and spool.workflow.workflow.step(12).errornext == 15
    assert WorkflowVersion.objects.count() == 1


def test_load_workflow_command_exits_non_zero_naming_the_problem(db, write_workflow):
    bad = write_workflow("[1]\ncommand=true\nweekdays=mon-fry\n", "bad.ini")
    with pytest.raises(CommandError, match=r"\[1\] weekdays = 'mon-fry'"):
        call_command("load_workflow", "payments", bad)
    assert not Spool.objects.exists()


def test_load_workflow_command_creates_the_spool(db, write_workflow, capsys):
    path = write_workflow(EXAMPLE_CHAIN)
    call_command("load_workflow", "payments", path)
    assert Spool.objects.get(name="payments").workflow.workflow.step(10).text == "Initialize"
    assert "payments created with workflow v1 (7 steps" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["bad name", "a;rm -rf", "$(id)", "ünï", "a/b", "", "..", ".", "-rf", "--delete", ".hidden"])
def test_spool_names_outside_letters_digits_dot_dash_underscore_are_refused(db, write_workflow, name):
    path = write_workflow(EXAMPLE_CHAIN)
    with pytest.raises(InvalidInput, match="letters, digits"):
        workflow_load(spool_name=name, path=path, actor=TEST_ACTOR)
    assert not Spool.objects.exists()


def test_files_in_the_existing_format_load_as_they_are():
    text = "; comment\n# another\n[1]\nCommand = true\nTEXT = Start\nNext =\nErrorNext=\nRetries=\nfinalizenext=\nfinalizeafterdays=\n"
    step = parse_workflow(text).step(1)
    assert (step.text, step.next, step.retries) == ("Start", None, None)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("1-5", (1, 2, 3, 4, 5)),
        ("mon-fri", (1, 2, 3, 4, 5)),
        ("mon,wed,fri", (1, 3, 5)),
        ("sat, sun", (6, 7)),
        ("fri-mon", (1, 5, 6, 7)),
        ("1,3-4,Sunday", (1, 3, 4, 7)),
    ],
)
def test_weekdays_take_numbers_names_lists_and_ranges(text, days):
    assert parse_weekdays(text) == days


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("10", 600), ("1.5m", 90)])
def test_delay_units_and_bare_minutes(text, seconds):
    assert parse_delay(text) == seconds


def test_load_workflow_command_reads_a_path_relative_to_the_current_directory(db, tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.ini").write_text("[1]\ncommand=true\n")
    monkeypatch.chdir(tmp_path)
    call_command("load_workflow", "mine", "mine.ini")
    assert Spool.objects.get(name="mine").workflow_file == str(tmp_path / "mine.ini")
