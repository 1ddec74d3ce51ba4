"""Two real dispatcher processes on PostgreSQL: no job runs twice, and a parallel limit holds across them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from itertools import combinations

import pytest
from django.conf import settings
from django.db import connection

from scheduling.workflows.models import Job, JobAttempt, JobStatus
from scheduling.workflows.services import job_add, job_start, workflow_load

JOBS_PER_SPOOL = 20


def database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_dispatcher() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",  # django-q2 in sync mode: each dispatcher is its own worker
        "DISPATCHER_POLL_MS": "20",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_dispatcher"], cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_dispatchers_at_once_never_run_a_job_twice(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    # mkdir fails on a second run of the same generation, so a double run would show as Error too.
    workflow = tmp_path / "workflow.ini"
    workflow.write_text(f"[1]\ncommand=mkdir {runs}/<Spoolname>-<Generation>\nnext=2\n[2]\ncommand=sleep 0.02\nparallel=1\n")
    jobs = []
    for name in ("north", "south"):
        spool = workflow_load(spool_name=name, path=str(workflow), actor="test").spool
        for _ in range(JOBS_PER_SPOOL):
            jobs.append(job_start(job=job_add(spool=spool, state=1, actor="test"), actor="test", named=False))

    dispatchers = [start_dispatcher(), start_dispatcher()]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and Job.objects.exclude(status=JobStatus.OK).exclude(status=JobStatus.ERROR).exists():
            assert all(d.poll() is None for d in dispatchers), "a dispatcher died"
            time.sleep(0.2)
    finally:
        for dispatcher in dispatchers:
            dispatcher.send_signal(signal.SIGTERM)
        codes = [dispatcher.wait(timeout=30) for dispatcher in dispatchers]

    assert codes == [0, 0], [d.stderr.read().decode()[-2000:] for d in dispatchers]  # both stopped cleanly on SIGTERM
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.OK}
    assert len(list(runs.iterdir())) == len(jobs)
    per_job = {job.id: list(JobAttempt.objects.filter(job=job).order_by("id").values_list("state", flat=True)) for job in jobs}
    assert all(states == [1, 2] for states in per_job.values())
    # parallel=1 across both processes: no two attempts of step 2 overlapped
    spans = list(JobAttempt.objects.filter(state=2).values_list("started_at", "finished_at"))
    assert all(a_end < b_start or b_end < a_start for (a_start, a_end), (b_start, b_end) in combinations(spans, 2))
