"""Benchmark of the workflow job scheduler with its real processes (not a test).

1. A workflow of 40 chained steps whose command is `true`: time from `start` to OK,
   and the per-step overhead (target: under 0.5 s per step; an orchestrator widely
   used for this took about 1.9 s per task in a published 40-task comparison).
2. 1,000 single-step jobs through two django-q2 workers: jobs per second.

It runs `manage.py run_dispatcher` and `manage.py qcluster` (2 workers) as separate
processes against PostgreSQL, in a database of its own (created when missing):

    .venv/bin/python bench/workflow.py                      # ORM broker
    .venv/bin/python bench/workflow.py --broker redis       # Redis broker
    .venv/bin/python bench/workflow.py --database-url postgres://postgres@127.0.0.1:5432/wt6_bench
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
TARGET_PER_STEP = 0.5
REFERENCE_PER_TASK = 1.9


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/wt6_bench")
    parser.add_argument("--broker", choices=("orm", "redis"), default="orm")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", choices=("small", "full"), default="full", help="small: the CI smoke run")
    args = parser.parse_args()
    if args.size == "small":
        args.steps, args.jobs = 3, 20
    return args


def ensure_database(url: str) -> None:
    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password, dbname="postgres"
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def environment(args: argparse.Namespace) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "1",
        "PORTAL_DATA_DIR": str(ROOT / "var" / "bench"),
        "Q_BROKER": args.broker,
        "Q_WORKERS": str(args.workers),
        "Q_SYNC": "0",
        "LOG_LEVEL": "WARNING",
    }
    if args.broker == "redis":
        env["REDIS_URL"] = args.redis_url
    return env


def wait_until(predicate, timeout: float, every: float = 0.01) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark did not finish in time")
        time.sleep(every)
    return time.perf_counter()


def main() -> None:
    args = parse_args()
    ensure_database(args.database_url)
    env = environment(args)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django_q.models import OrmQ, Task

    from scheduling.workflows.models import Job, JobAttempt, JobStatus, SchedulerControl, Spool, WorkflowVersion
    from scheduling.workflows.services import job_add, job_start, workflow_load

    call_command("migrate", verbosity=0)
    # A clean slate: only this benchmark's rows live in its database.
    JobAttempt.objects.all().delete()
    Job.objects.all().delete()
    Spool.objects.update(workflow=None)
    WorkflowVersion.objects.all().delete()
    Spool.objects.all().delete()
    OrmQ.objects.all().delete()
    Task.objects.all().delete()
    SchedulerControl.objects.update(shut_down=False)
    if args.broker == "redis":
        import redis

        redis.Redis.from_url(args.redis_url).delete("django_q:portal:q")

    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    chain = folder / "chain.ini"
    chain.write_text("".join(f"[{n}]\ncommand=true\n" + (f"next={n + 1}\n" if n < args.steps else "") for n in range(1, args.steps + 1)))
    single = folder / "single.ini"
    single.write_text("[1]\ncommand=true\n")
    workflow_load(spool_name="bench-chain", path=str(chain), actor="bench")
    workflow_load(spool_name="bench-single", path=str(single), actor="bench")

    processes = [
        subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "manage.py", "run_dispatcher"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        # warm-up: both processes up and one job through them
        warm = job_start(job=job_add(spool="bench-single", state=1, actor="bench"), actor="bench", named=False)
        wait_until(lambda: Job.objects.filter(id=warm.id, status=JobStatus.OK).exists(), 60)

        chains = [run_chain(args, job_add, job_start, Job, JobAttempt, JobStatus) for _ in range(3)]
        throughput = run_many(args, job_add, Job, JobStatus)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    print(f"\nworkflow benchmark: PostgreSQL {urlparse(args.database_url).path.lstrip('/')}, broker {args.broker}, {args.workers} workers")
    total, first_start, per_step, latency, broker, command = (statistics.median(figure) for figure in zip(*chains, strict=True))
    print(f"  {args.steps} chained `true` steps, start to OK: {total:.2f} s (median of {len(chains)} runs: {', '.join(f'{c[0]:.2f}' for c in chains)})")
    print(f"    start -> first step running: {first_start * 1000:.0f} ms (the dispatcher's poll and the broker; must stay under 2 s)")
    print(f"  per step, first step running -> OK / {args.steps}: {per_step * 1000:.0f} ms  (target {TARGET_PER_STEP * 1000:.0f} ms:"
          f" {per_step / TARGET_PER_STEP:.2f}x of it; reference orchestrator {REFERENCE_PER_TASK} s/task: {REFERENCE_PER_TASK / per_step:.0f}x faster)")
    print(f"    of which the command itself (median): {command * 1000:.1f} ms;"
          f" step finished -> next step claimed (median): {latency * 1000:.1f} ms; claimed -> started (median): {broker * 1000:.1f} ms")
    print(f"  {args.jobs} single-step jobs through {args.workers} workers: {throughput:.1f} jobs/s ({args.jobs / throughput:.1f} s)")


def run_chain(args, job_add, job_start, Job, JobAttempt, JobStatus):
    job = job_add(spool="bench-chain", state=1, actor="bench")
    begin = time.perf_counter()
    started = job_start(job=job, actor="bench", named=False).timestamp
    end = wait_until(lambda: Job.objects.filter(id=job.id, status=JobStatus.OK).exists(), 600)
    attempts = list(JobAttempt.objects.filter(job=job).order_by("id"))
    first_start = (attempts[0].started_at - started).total_seconds()
    chain = (attempts[-1].finished_at - attempts[0].started_at).total_seconds()
    gaps = [(b.claimed_at - a.finished_at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)]
    to_worker = [(a.started_at - a.claimed_at).total_seconds() for a in attempts]
    command = [(a.finished_at - a.started_at).total_seconds() for a in attempts]
    return (
        end - begin,
        first_start,
        chain / args.steps,
        statistics.median(gaps),
        statistics.median(to_worker),
        statistics.median(command),
    )


def run_many(args, job_add, Job, JobStatus):
    from portal import clock

    ids = [job_add(spool="bench-single", state=1, actor="bench").id for _ in range(args.jobs)]
    begin = time.perf_counter()
    Job.objects.filter(id__in=ids).update(status=JobStatus.WAITING, timestamp=clock.now())  # all started at once
    end = wait_until(lambda: not Job.objects.filter(id__in=ids).exclude(status=JobStatus.OK).exists(), 900, every=0.05)
    return args.jobs / (end - begin)


if __name__ == "__main__":
    main()
