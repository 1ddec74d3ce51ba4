"""Workflow files as operators really write them load as they are (DOMAIN §3: existing files load unchanged)."""

from __future__ import annotations

import pytest

from scheduling.workflows.services import workflow_load
from scheduling.workflows.workflow import WorkflowError, parse_workflow
from tests.scheduling.conftest import TEST_ACTOR

REAL_FILE = """\
; Spool INVOICES - nightly invoice export
# maintained by the operations team

[DEFAULT]
delay = 10m
retries =

[10]
Text = Initialize
Command = bin/init.sh %s %06d
Next = 11        ; then prepare
new=10
weekdays = mon-fri   # business days only
mintime = 06:00
maxTime = 20:30

[11]
text=Prepare
command=bin/prepare.sh <Spoolname> <Generation>
next=
errornext
Retries = 3 ; three tries, then Error
finalizenext = 12
FINALIZEAFTERDAYS = 7
parallel = 2

[12]
text=Purge
command=bin/purge.sh %s %06d
""".replace("Initialize", "Initialize   \t")  # trailing whitespace, as editors leave it


def test_a_file_with_comments_blank_values_default_section_and_any_key_case_loads():
    workflow = parse_workflow(REAL_FILE)
    first, second = workflow.step(10), workflow.step(11)
    assert (first.text, first.next, first.new, first.weekdays, first.mintime, first.maxtime) == (
        "Initialize", 11, 10, (1, 2, 3, 4, 5), "06:00", "20:30",
    )
    assert (first.delay_seconds, first.retries) == (600, None)  # from [DEFAULT]
    assert (second.next, second.errornext, second.retries, second.parallel) == (None, None, 3, 2)
    assert (second.finalize_next, second.finalize_after_days) == (12, 7)


def test_a_byte_order_mark_and_latin1_comments_load(db, tmp_path):
    bom = tmp_path / "bom.ini"
    bom.write_bytes("\ufeff[1]\r\ncommand=true\r\ntext=Start\r\n".encode())
    latin = tmp_path / "latin.ini"
    latin.write_bytes("; Übergabe an die Buchhaltung\n[1]\ncommand=true\ntext=Übergabe\n".encode("latin-1"))

    assert workflow_load(spool_name="bom", path=str(bom), actor=TEST_ACTOR).version.workflow.step(1).text == "Start"
    assert workflow_load(spool_name="latin", path=str(latin), actor=TEST_ACTOR).version.workflow.step(1).text == "Übergabe"


def test_a_comment_or_hash_inside_a_command_stays_part_of_it():
    step = parse_workflow("[1]\ncommand=bin/notify --channel #ops ; done\ntext=Notify #1\n").step(1)
    assert step.command == "bin/notify --channel #ops ; done" and step.text == "Notify #1"


@pytest.mark.parametrize("key", ["retries", "parallel"])
def test_zero_like_empty_means_no_limit(key):
    step = parse_workflow(f"[1]\ncommand=true\n{key}=0\n").step(1)
    assert getattr(step, key) is None


def test_the_same_step_number_written_twice_is_refused():
    with pytest.raises(WorkflowError, match="step 10 appears twice"):
        parse_workflow("[10]\ncommand=true\n[010]\ncommand=false\n")


def test_an_inline_comment_does_not_hide_a_bad_value():
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("[1]\ncommand=true\nnext=7 ; not there\n")
    [problem] = caught.value.problems
    assert (problem.section, problem.key, problem.value) == ("1", "next", "7")


def test_placeholders_in_angle_brackets_take_any_case():
    step = parse_workflow("[1]\ncommand=run <SPOOLNAME> <generation> %s %06d date +%S\n").step(1)
    assert step.argv(spool="inv", generation=42) == ["run", "inv", "000042", "inv", "000042", "date", "+%S"]


def test_a_step_key_overrides_the_default_whatever_its_case_but_a_step_may_not_write_it_twice():
    step = parse_workflow("[DEFAULT]\ndelay=10m\n[1]\ncommand=true\nDelay=30s\n").step(1)
    assert step.delay_seconds == 30
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("[1]\ncommand=true\nnext=1\nNext=2\n[2]\ncommand=true\n")
    [problem] = caught.value.problems
    assert (problem.section, problem.key, problem.value) == ("1", "Next", "2") and "twice" in problem.reason


def test_an_unknown_key_of_the_default_section_is_refused_naming_it():
    with pytest.raises(WorkflowError) as caught:
        parse_workflow("[DEFAULT]\ncolour=blue\n[1]\ncommand=true\n[2]\ncommand=true\n")
    [problem] = caught.value.problems
    assert (problem.section, problem.key, problem.value, problem.reason) == ("DEFAULT", "colour", "blue", "unknown key")


def test_finalize_after_days_in_default_applies_to_the_steps_naming_finalize_next():
    workflow = parse_workflow("[DEFAULT]\nfinalizeAfterDays=30\n[1]\ncommand=true\nnext=2\n[2]\ncommand=true\nfinalizeNext=3\n[3]\ncommand=true\n")
    assert (workflow.step(1).finalize_next, workflow.step(1).finalize_after_days) == (None, None)
    assert (workflow.step(2).finalize_next, workflow.step(2).finalize_after_days) == (3, 30)


def test_finalize_next_alone_finalizes_after_zero_days():
    step = parse_workflow("[1]\ncommand=true\nfinalizeNext=2\n[2]\ncommand=true\n").step(1)
    assert (step.finalize_next, step.finalize_after_days) == (2, 0)
