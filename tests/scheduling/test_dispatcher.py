"""The dispatcher and the worker: return codes, gates, time limit, output (Q_CLUSTER is sync in tests)."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduling.workflows import worker
from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobAttempt, JobStatus
from scheduling.workflows.services import job_start, scheduler_resume, scheduler_shutdown
from tests.scheduling.conftest import TEST_ACTOR, history

pytestmark = pytest.mark.django_db

S = JobStatus
NOW = "2026-03-02T10:00:00Z"  # a Monday
# Only generation 1 finds its data: later generations of a `new` step wait (9) instead of looping.
ONLY_FIRST = """sh -c 'test "$0" = 000001 || exit 9' <Generation>"""

CHAIN = f"""
    [10]
    text=Initialize
    command={ONLY_FIRST}
    next=11
    new=10
    delay=15s
    [11]
    text=Prepare
    command=true
    next=12
    [12]
    text=Archiving
    command=sh -c "echo archive refused; exit 4"
    next=13
    errornext=15
    [13]
    text=Protocol
    command=true
    next=14
    [14]
    text=Cleanup
    command=true
    [15]
    text=Delete
    command=true
    next=14
"""


def test_example_chain_runs_through_its_steps_at_once(load_spool, waiting_job, now):
    start = now(NOW)
    spool = load_spool(CHAIN)
    job = waiting_job(spool, 10)

    assert jobs_dispatch() == 1

    job.refresh_from_db()
    # each finished step started the next at once: 10, 11, 12 fails -> errornext 15 -> 14 -> OK
    assert history(job) == [(10, 1, 0), (11, 1, 0), (12, 1, 4), (15, 1, 0), (14, 1, 0)]
    assert (job.status, job.state, job.type, job.return_code) == (S.OK, 14, "Cleanup", 0)
    assert job.finished_at == start
    # new=10 created generation 2 at Initialize; its data is not there, so it waits 15 s
    second = Job.objects.get(spool=spool, generation=2)
    assert (second.state, second.status, second.attempt, second.origin) == (10, S.WAITING, 2, "new")
    assert second.timestamp == start + dt.timedelta(seconds=15)


def test_return_code_zero_goes_to_the_next_step_with_attempt_one(load_spool, waiting_job, now):
    start = now(NOW)
    spool = load_spool("""
        [1]
        command=true
        next=2
        [2]
        text=Second
        command=sh -c "exit 9"
        delay=10m
    """)
    job = waiting_job(spool, 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert history(job) == [(1, 1, 0), (2, 1, 9)]
    assert (job.state, job.type, job.attempt, job.status) == (2, "Second", 2, S.WAITING)
    assert job.timestamp == start + dt.timedelta(minutes=10)


def test_return_code_zero_on_the_last_step_is_ok(load_spool, waiting_job, now):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert (job.status, job.state, job.attempt, job.return_code) == (S.OK, 1, 1, 0)


def test_return_code_nine_tries_again_after_the_delay_until_retries(load_spool, waiting_job, now):
    start = now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=sh -c 'exit 9'\nretries=3\ndelay=2m\n"), 1)

    jobs_dispatch()
    job.refresh_from_db()
    assert (job.status, job.attempt, job.timestamp) == (S.WAITING, 2, start + dt.timedelta(minutes=2))

    now("2026-03-02T10:01:59Z")
    assert jobs_dispatch() == 0  # not due yet

    now("2026-03-02T10:02:00Z")
    jobs_dispatch()
    now("2026-03-02T10:04:00Z")
    jobs_dispatch()
    job.refresh_from_db()
    assert (job.status, job.attempt, job.return_code) == (S.ERROR, 3, 9)
    assert history(job) == [(1, 1, 9), (1, 2, 9), (1, 3, 9)]


def test_return_code_nine_without_retries_tries_forever(load_spool, waiting_job, now):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=sh -c 'exit 9'\ndelay=30s\n"), 1)
    for second in range(0, 30 * 6, 30):
        now(f"2026-03-02T10:{second // 60:02d}:{second % 60:02d}Z")
        jobs_dispatch()
    job.refresh_from_db()
    assert (job.status, job.attempt) == (S.WAITING, 7)


def test_other_return_code_goes_to_errornext(load_spool, waiting_job, now):
    now(NOW)
    spool = load_spool("[1]\ncommand=false\nerrornext=2\n[2]\ntext=Repair\ncommand=sh -c 'exit 9'\n")
    job = waiting_job(spool, 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert history(job)[:2] == [(1, 1, 1), (2, 1, 9)]
    assert (job.state, job.type) == (2, "Repair")


def test_other_return_code_without_errornext_is_error(load_spool, waiting_job, now):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=sh -c 'echo out; echo err >&2; exit 3'\nnext=2\n[2]\ncommand=true\n"), 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert (job.status, job.state, job.return_code) == (S.ERROR, 1, 3)
    assert "out\n" in job.output_tail and "err\n" in job.output_tail
    attempt = JobAttempt.objects.get(job=job)
    assert attempt.output_tail == job.output_tail and attempt.status_after == S.ERROR


def test_output_keeps_only_its_tail(load_spool, waiting_job, now, settings):
    settings.JOB_OUTPUT_TAIL_CHARS = 100
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=sh -c 'seq 1 5000'\n"), 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert len(job.output_tail) == 100 and job.output_tail.endswith("4999\n5000\n")


def test_a_command_past_its_time_limit_is_stopped_and_fails(load_spool, waiting_job, now, settings):
    settings.JOB_TIME_LIMIT_SECONDS = 1
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=sleep 30\nerrornext=2\n[2]\ncommand=sh -c 'exit 9'\n"), 1)
    jobs_dispatch()
    job.refresh_from_db()
    first = JobAttempt.objects.filter(job=job).first()
    assert first.return_code < 0 and "time limit of 1 s exceeded" in first.output_tail
    assert first.outcome.startswith("time limit") and job.state == 2


def test_a_missing_program_fails_like_a_shell_would(load_spool, waiting_job, now):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=no-such-program-here\n"), 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert (job.status, job.return_code) == (S.ERROR, 127)
    assert "cannot run 'no-such-program-here'" in job.output_tail


def test_commands_run_in_the_project_directory_with_the_job_in_their_environment(load_spool, waiting_job, now, settings):
    now(NOW)
    job = waiting_job(load_spool("""[1]\ncommand=sh -c 'pwd; echo "$PORTAL_SPOOL $PORTAL_GENERATION $PORTAL_STATE $PORTAL_ATTEMPT"'\n"""), 1)
    jobs_dispatch()
    job.refresh_from_db()
    assert job.output_tail == f"{settings.WORKFLOW_BASE_DIR}\nbilling 000001 1 1\n"


def test_a_job_waiting_for_a_later_timestamp_is_not_started(load_spool, waiting_job, now):
    from scheduling.workflows.services import job_schedule

    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    job_schedule(job=job, timestamp=dt.datetime(2026, 3, 2, 10, 0, 5, tzinfo=dt.UTC), actor=TEST_ACTOR)
    assert jobs_dispatch() == 0
    now("2026-03-02T10:00:05Z")
    assert jobs_dispatch() == 1


# --- gates -------------------------------------------------------------------------


def _busy(job: Job) -> None:
    """The job is running in some live worker elsewhere."""
    Job.objects.filter(id=job.id).update(
        status=S.RUNNING, started_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC), lease_until=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), worker="elsewhere:1"
    )


def test_parallel_limit_counts_running_jobs_of_the_step_across_spools(load_spool, waiting_job, now):
    now(NOW)
    text = "[1]\ncommand=true\nparallel=2\n[2]\ncommand=true\n"
    north, south = load_spool(text, name="north"), load_spool(text, name="south")
    _busy(waiting_job(north, 1))
    _busy(waiting_job(south, 1))
    other_step = waiting_job(north, 2)
    blocked = waiting_job(south, 1)

    assert jobs_dispatch() == 1  # only step 2's job
    other_step.refresh_from_db()
    blocked.refresh_from_db()
    assert other_step.status == S.OK and blocked.status == S.WAITING

    Job.objects.filter(spool=north, state=1, status=S.RUNNING).update(status=S.OK)
    assert jobs_dispatch() == 1
    blocked.refresh_from_db()
    assert blocked.status == S.OK


def test_parallel_limit_holds_within_one_dispatch(load_spool, waiting_job, now, held):
    now(NOW)
    spool = load_spool("[1]\ncommand=true\nparallel=2\n")
    jobs = [waiting_job(spool, 1) for _ in range(5)]
    jobs_dispatch()
    assert Job.objects.occupying().count() == Job.objects.queued().count() == 2  # claimed: Waiting for a free worker
    assert [job.id for job in jobs[:2]] == [job_id for job_id, _ in held.claims]


@pytest.mark.parametrize(
    ("instant", "starts"),
    [
        ("2026-03-06T22:59:00Z", True),  # Friday 23:59 in Berlin
        ("2026-03-06T23:00:00Z", False),  # Saturday 00:00 in Berlin, still Friday in UTC
        ("2026-03-08T12:00:00Z", False),  # Sunday
        ("2026-03-08T23:00:00Z", True),  # Monday 00:00 in Berlin
    ],
)
def test_weekdays_gate_in_the_portal_time_zone(load_spool, waiting_job, now, settings, instant, starts):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    now(instant)
    job = waiting_job(load_spool("[1]\ncommand=true\nweekdays=mon-fri\n"), 1)
    assert jobs_dispatch() == int(starts)
    job.refresh_from_db()
    assert job.status == (S.OK if starts else S.WAITING)


@pytest.mark.parametrize(
    ("instant", "starts"),
    [
        ("2026-03-02T04:59:00Z", False),  # 05:59 in Berlin
        ("2026-03-02T05:00:00Z", True),  # 06:00
        ("2026-03-02T17:00:59Z", True),  # 18:00:59, still the maxtime minute
        ("2026-03-02T17:01:00Z", False),  # 18:01
        ("2026-07-01T04:00:00Z", True),  # 06:00 in summer time
    ],
)
def test_time_window_gate_in_the_portal_time_zone(load_spool, waiting_job, now, settings, instant, starts):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    now(instant)
    waiting_job(load_spool("[1]\ncommand=true\nmintime=06:00\nmaxtime=18:00\n"), 1)
    assert jobs_dispatch() == int(starts)


@pytest.mark.parametrize(("instant", "starts"), [("2026-03-02T22:30:00Z", True), ("2026-03-02T03:00:00Z", True), ("2026-03-02T12:00:00Z", False)])
def test_a_time_window_may_span_midnight(load_spool, waiting_job, now, instant, starts):
    now(instant)
    waiting_job(load_spool("[1]\ncommand=true\nmintime=22:00\nmaxtime=04:00\n"), 1)
    assert jobs_dispatch() == int(starts)


def test_starting_one_named_generation_ignores_the_time_window_once(load_spool, waiting_job, now):
    start = now("2026-03-02T05:00:00Z")
    spool = load_spool("[1]\ncommand=sh -c 'exit 9'\ndelay=1m\nmintime=08:00\nmaxtime=18:00\nweekdays=mon-fri\n")
    job = waiting_job(spool, 1)
    assert jobs_dispatch() == 0

    job_start(job=job, actor=TEST_ACTOR, named=True)
    assert jobs_dispatch() == 1
    job.refresh_from_db()
    assert (job.attempt, job.timestamp) == (2, start + dt.timedelta(minutes=1))

    now("2026-03-02T05:01:00Z")
    assert jobs_dispatch() == 0  # the next attempt keeps to the window again


def test_a_named_start_does_not_pass_the_weekday_gate(load_spool, waiting_job, now):
    now("2026-03-07T10:00:00Z")  # Saturday
    job = waiting_job(load_spool("[1]\ncommand=true\nweekdays=mon-fri\n"), 1)
    job_start(job=job, actor=TEST_ACTOR, named=True)
    assert jobs_dispatch() == 0


def test_a_shut_down_scheduler_starts_nothing_until_resumed(load_spool, waiting_job, now):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\n"), 1)
    scheduler_shutdown(actor=TEST_ACTOR, reason="maintenance")
    assert jobs_dispatch() == 0
    scheduler_resume(actor=TEST_ACTOR)
    assert jobs_dispatch() == 1
    job.refresh_from_db()
    assert job.status == S.OK


def test_a_running_job_finishes_after_shutdown_but_its_next_step_waits(load_spool, waiting_job, now, held):
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=2\n[2]\ncommand=true\n"), 1)
    jobs_dispatch()
    scheduler_shutdown(actor=TEST_ACTOR)
    held.run_all()
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.WAITING)


def test_a_disabled_spool_starts_nothing(load_spool, waiting_job, now):
    from scheduling.workflows.services import spool_set_enabled

    now(NOW)
    spool = load_spool("[1]\ncommand=true\n")
    waiting_job(spool, 1)
    spool_set_enabled(spool=spool, enabled=False, actor=TEST_ACTOR)
    assert jobs_dispatch() == 0


def test_pause_of_a_running_job_lets_the_attempt_finish_then_pauses(load_spool, waiting_job, now, held):
    from scheduling.workflows.services import job_pause

    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=2\n[2]\ncommand=true\n"), 1)
    jobs_dispatch()
    [(job_id, token)] = held.claims
    assert worker.job_attempt_pick(job_id, token)  # a worker has started the step
    job = job_pause(job=job, actor=TEST_ACTOR)
    assert (job.status, job.stop_flag) == (S.RUNNING, True)

    worker.job_attempt_execute(job_id, token)

    job.refresh_from_db()
    assert (job.state, job.status, job.stop_flag, job.return_code) == (2, S.PAUSE, False, 0)
    assert JobAttempt.objects.get(job=job).outcome == "next step 2; paused (stop flag)"


def test_a_job_whose_step_left_the_workflow_is_in_error(load_spool, waiting_job, now):
    now(NOW)
    spool = load_spool("[1]\ncommand=true\n[2]\ncommand=true\n")
    job = waiting_job(spool, 2)
    load_spool("[1]\ncommand=true\n")
    jobs_dispatch()
    job.refresh_from_db()
    assert job.status == S.ERROR and "step 2 is not in workflow v2" in job.output_tail


def test_claimed_jobs_waiting_for_a_worker_are_capped(load_spool, waiting_job, now, held, settings):
    settings.DISPATCHER_QUEUE_AHEAD = 3
    now(NOW)
    spool = load_spool("[1]\ncommand=true\n")
    for _ in range(5):
        waiting_job(spool, 1)
    assert jobs_dispatch() == 3
    assert jobs_dispatch() == 0
    assert Job.objects.filter(status=S.WAITING, claim_token=None).count() == 2


def test_a_free_worker_takes_waiting_claims_then_due_jobs_oldest_first(load_spool, waiting_job, now, held, settings):
    settings.DISPATCHER_QUEUE_AHEAD = 2
    now(NOW)
    spool = load_spool("[1]\ncommand=true\n")
    jobs = [waiting_job(spool, 1) for _ in range(4)]
    jobs_dispatch()
    first_claim = held.claims[0]
    held.claims = held.claims[:1]  # the broker delivers only the first task

    worker.job_run(job_id=first_claim[0], token=first_claim[1])

    assert set(Job.objects.values_list("status", flat=True)) == {S.OK}
    order = list(JobAttempt.objects.order_by("started_at", "id").values_list("job_id", flat=True))
    assert order == [job.id for job in jobs]
    assert len({worker for worker in JobAttempt.objects.values_list("worker", flat=True)}) == 1


def test_a_worker_past_its_budget_hands_the_next_step_to_the_queue(load_spool, waiting_job, now, held, settings):
    settings.JOB_WORKER_BUDGET_SECONDS = 0
    now(NOW)
    job = waiting_job(load_spool("[1]\ncommand=true\nnext=2\n[2]\ncommand=true\n"), 1)
    jobs_dispatch()
    held.run_all()
    job.refresh_from_db()
    assert (job.state, job.status) == (2, S.WAITING) and job.claim_token is not None  # claimed at once, waiting for a worker
    assert [job_id for job_id, _ in held.claims] == [job.id]
    held.run_all()
    job.refresh_from_db()
    assert job.status == S.OK
