"""Commands run without a shell: nothing in a spool name, a comment or a command line reaches one."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, Spool
from scheduling.workflows.services import job_comment
from tests.scheduling.conftest import TEST_ACTOR

pytestmark = pytest.mark.django_db


def test_shell_syntax_in_a_command_stays_literal_arguments(load_spool, waiting_job, now, tmp_path):
    now("2026-03-02T10:00:00Z")
    marker = tmp_path / "pwned"
    job = waiting_job(load_spool(f"[1]\ncommand=echo <Spoolname>; touch {marker} && echo $(id) `id` | cat > {marker}\n"), 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert not marker.exists()
    assert job.output_tail == f"billing; touch {marker} && echo $(id) `id` | cat > {marker}\n"


def test_a_comment_never_reaches_a_command(load_spool, waiting_job, now, tmp_path):
    now("2026-03-02T10:00:00Z")
    marker = tmp_path / "pwned"
    job = waiting_job(load_spool("[1]\ncommand=printf [%s|%06d]\n"), 1)
    job_comment(job=job, comment=f"$(touch {marker}); `touch {marker}`", actor=TEST_ACTOR)
    jobs_dispatch()
    job.refresh_from_db()
    assert not marker.exists()
    assert job.output_tail == "[billing|000001]"


def test_each_placeholder_fills_one_argument_only(load_spool, waiting_job, now):
    now("2026-03-02T10:00:00Z")
    spool = load_spool("""[1]\ncommand=sh -c 'printf "%%s\\n" "$#" "$@"' argv0 "spool=<Spoolname> gen=<Generation>" %s.%06d\n""", name="a.b-c_d")
    job = waiting_job(spool, 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert job.output_tail.splitlines() == ["2", "spool=a.b-c_d gen=000001", "a.b-c_d.000001"]


@pytest.mark.parametrize("name", ["x;touch pwned", "$(touch pwned)", "a b", "`id`", "x|y", "../etc"])
def test_a_spool_name_with_shell_syntax_is_refused_everywhere(write_workflow, api_client_for, operator, name):
    path = write_workflow("[1]\ncommand=true\n")
    with pytest.raises(CommandError, match="letters, digits"):
        call_command("load_workflow", name, path)
    answer = api_client_for(operator).post("/api/v1/jobs/", {"spool": name, "state": 1}, format="json")
    assert answer.status_code == 400 and "spool" in answer.json()
    assert not Spool.objects.exists() and not Job.objects.exists()
