"""Benchmark of the workflow job path with its real processes (not a test): figures beside a floor measured in the same run.

1. The durable floor of this machine: two parallel loops on the same PostgreSQL, each doing what
   a durable job needs at the least (a claim commit with SKIP LOCKED, fork+exec of `/bin/true`,
   an outcome commit), in a table of their own: jobs/s; and the same with the command started by the
   step guard server, as a worker runs it (DOMAIN §5: a process group that dies with its worker).
2. Single-step jobs (`/bin/true`) through the Procfile's processes (`run_dispatcher` and the
   django-q2 cluster, 2 workers, ORM broker): jobs/s, and its ratio to the floor (target >= 0.5).
3. The same with 1, 2 and 4 workers on the Redis broker (REDIS_URL, Q_BROKER=redis).
4. A chain of `true` steps: time from `start` to OK and the cost per step.
5. One claim (`jobs_claim_due`) with a 10,000-step workflow beside one with a 1-step workflow.

Runs against PostgreSQL in a database of its own (created when missing; its job rows are deleted):

    DEBUG=1 .venv/bin/python bench/workflow.py                     # full size (about 6 minutes)
    DEBUG=1 .venv/bin/python bench/workflow.py --size small        # a smoke run: figures produced, not their values
    DEBUG=1 .venv/bin/python bench/workflow.py --database-url postgres://postgres@127.0.0.1:5432/jobs_bench \\
        --redis-url redis://127.0.0.1:6379/13
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5
SIZES = {"full": {"jobs": 200, "floor": 1000, "steps": 40, "claims": 40}, "small": {"jobs": 20, "floor": 100, "steps": 5, "claims": 5}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/jobs_bench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis figures (no Redis server here)")
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password, dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


# --- 1. the floor ------------------------------------------------------------------------------


def _floor_loop(url: str, done: multiprocessing.Value, guarded: bool) -> None:
    import psycopg2

    from portal.lib.stepguard import start_step

    connection = psycopg2.connect(url)
    while True:
        with connection, connection.cursor() as cursor:  # one commit: the claim
            cursor.execute(
                "UPDATE bench_floor SET status = 'R', lease_until = now() + interval '30 s' WHERE id ="
                " (SELECT id FROM bench_floor WHERE status = 'W' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
            )
            row = cursor.fetchone()
        if row is None:
            break
        if guarded:  # as a worker runs a step (DOMAIN §5): by its guard server, a process group that dies with it
            code = start_step(["/bin/true"], grace=10, cwd="/", env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}).wait()
        else:
            code = subprocess.run(["/bin/true"], check=False).returncode  # fork + exec
        with connection, connection.cursor() as cursor:  # one commit: the outcome
            cursor.execute("UPDATE bench_floor SET status = 'O', return_code = %s, lease_until = NULL WHERE id = %s", [code, row[0]])
        with done.get_lock():
            done.value += 1
    connection.close()


def measure_floor(url: str, jobs: int, *, guarded: bool = False, loops: int = 2) -> float:
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_floor")
        cursor.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, status char(1) NOT NULL, lease_until timestamptz, return_code int)")
        cursor.execute("CREATE INDEX ON bench_floor (status, id)")
        cursor.execute("INSERT INTO bench_floor (status) SELECT 'W' FROM generate_series(1, %s)", [jobs])
    done = multiprocessing.Value("i", 0)
    workers = [multiprocessing.Process(target=_floor_loop, args=(url, done, guarded)) for _ in range(loops)]
    begin = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - begin
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_floor")
    connection.close()
    return done.value / elapsed


# --- 2-4. the real processes -------------------------------------------------------------------


def environment(args: argparse.Namespace, *, broker: str, workers: int) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "1",
        "PORTAL_DATA_DIR": str(ROOT / "var" / "bench"),
        "Q_BROKER": broker,
        "Q_WORKERS": str(workers),
        "Q_SYNC": "0",
        "LOG_LEVEL": "WARNING",
    }
    if broker == "redis":
        env["REDIS_URL"] = args.redis_url
    return env


def wait_until(predicate, timeout: float, every: float = 0.01) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark did not finish in time")
        time.sleep(every)
    return time.perf_counter()


class Processes:
    """`run_dispatcher` and the django-q2 cluster, as the Procfile runs them, for one configuration."""

    def __init__(self, env: dict[str, str]) -> None:
        self.processes = [
            subprocess.Popen([sys.executable, "manage.py", command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for command in ("qcluster", "run_dispatcher")
        ]

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def throughput(args, *, broker: str, workers: int, jobs: int) -> float:
    from django_q.models import OrmQ

    from portal import clock
    from scheduling.workflows.models import Job, JobStatus
    from scheduling.workflows.services import job_add, job_start

    OrmQ.objects.all().delete()
    if broker == "redis":
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    with Processes(environment(args, broker=broker, workers=workers)):
        warm = job_start(job=job_add(spool="bench-single", state=1, actor="bench"), actor="bench", named=False)
        wait_until(lambda: Job.objects.filter(id=warm.id, status=JobStatus.OK).exists(), 90)
        ids = [job_add(spool="bench-single", state=1, actor="bench").id for _ in range(jobs)]
        begin = time.perf_counter()
        Job.objects.filter(id__in=ids).update(status=JobStatus.WAITING, timestamp=clock.now())  # all due at once
        try:
            from scheduling.workflows.wakeup import jobs_wake
        except ImportError:  # a checkout from before the wake-ups: measured as a baseline
            pass
        else:
            jobs_wake()
        end = wait_until(lambda: not Job.objects.filter(id__in=ids).exclude(status=JobStatus.OK).exists(), 900, every=0.02)
        return jobs / (end - begin)


def chain(args, steps: int) -> tuple[float, float]:
    from scheduling.workflows.models import Job, JobAttempt, JobStatus
    from scheduling.workflows.services import job_add, job_start

    with Processes(environment(args, broker="orm", workers=2)):
        job = job_add(spool="bench-chain", state=1, actor="bench")
        begin = time.perf_counter()
        job_start(job=job, actor="bench", named=False)
        end = wait_until(lambda: Job.objects.filter(id=job.id, status=JobStatus.OK).exists(), 600)
    attempts = list(JobAttempt.objects.filter(job=job).order_by("id"))
    return end - begin, (attempts[-1].finished_at - attempts[0].started_at).total_seconds() / steps


# --- 5. a claim with a long workflow -------------------------------------------------------------


def claim_seconds(spool: str, count: int) -> float:
    """The time of one `jobs_claim_due(limit=1)` with only ``spool`` enabled (the first claim, which parses, left out)."""
    from portal import clock
    from scheduling.workflows.dispatcher import jobs_claim_due
    from scheduling.workflows.models import Job, JobStatus, Spool
    from scheduling.workflows.services import job_add

    Spool.objects.update(enabled=False)
    Spool.objects.filter(name=spool).update(enabled=True)
    ids = [job_add(spool=spool, state=1, actor="bench").id for _ in range(count + 1)]
    Job.objects.filter(id__in=ids).update(status=JobStatus.WAITING, timestamp=clock.now())
    jobs_claim_due(limit=1)
    begin = time.perf_counter()
    for _ in range(count):
        jobs_claim_due(limit=1)
    elapsed = (time.perf_counter() - begin) / count
    Job.objects.filter(id__in=ids).update(status=JobStatus.OK, claim_token=None, lease_until=None)
    Spool.objects.update(enabled=True)
    return elapsed


def main() -> None:
    args = parse_args()
    size = SIZES[args.size]
    ensure_database(args.database_url)
    os.environ.update(environment(args, broker="orm", workers=2))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django_q.models import Task

    from scheduling.workflows.models import Job, JobAttempt, SchedulerControl, Spool, WorkflowVersion
    from scheduling.workflows.services import workflow_load

    call_command("migrate", verbosity=0)
    # A clean slate: only this benchmark's rows live in its database.
    JobAttempt.objects.all().delete()
    Job.objects.all().delete()
    Spool.objects.update(workflow=None)
    WorkflowVersion.objects.all().delete()
    Spool.objects.all().delete()
    Task.objects.all().delete()
    SchedulerControl.objects.update(shut_down=False)
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "bench-single": "[1]\ncommand=/bin/true\n",
        "bench-chain": "".join(f"[{n}]\ncommand=true\n" + (f"next={n + 1}\n" if n < size["steps"] else "") for n in range(1, size["steps"] + 1)),
        "bench-long": "".join(f"[{n}]\ncommand=true\nnext={n + 1 if n < 10_000 else ''}\n" for n in range(1, 10_001)),
    }
    for name, text in files.items():
        (folder / f"{name}.ini").write_text(text)
        workflow_load(spool_name=name, path=str(folder / f"{name}.ini"), actor="bench")

    floor = measure_floor(args.database_url, size["floor"])
    guarded_floor = measure_floor(args.database_url, size["floor"], guarded=True)
    orm = throughput(args, broker="orm", workers=2, jobs=size["jobs"])
    redis_figures = {} if args.no_redis else {n: throughput(args, broker="redis", workers=n, jobs=size["jobs"]) for n in (1, 2, 4)}
    total, per_step = chain(args, size["steps"])
    one, long = claim_seconds("bench-single", size["claims"]), claim_seconds("bench-long", size["claims"])

    print(f"\nworkflow benchmark ({args.size}): PostgreSQL {urlparse(args.database_url).path.lstrip('/')}, {os.cpu_count()} CPUs")
    print(f"  durable floor (2 loops: claim commit, fork+exec /bin/true, outcome commit): {floor:.0f} jobs/s")
    print(f"  the same loops with the command started by the step guard server (DOMAIN §5): {guarded_floor:.0f} jobs/s"
          f"  ({guarded_floor / floor:.2f} of the floor)")
    print(f"  {size['jobs']} single-step jobs, dispatcher + django-q2 cluster, 2 workers, ORM broker: {orm:.0f} jobs/s"
          f"  ratio to the floor {orm / floor:.2f} (target >= {TARGET_RATIO}), to the guarded floor {orm / guarded_floor:.2f}")
    for workers, figure in redis_figures.items():
        print(f"  Redis broker, {workers} worker(s): {figure:.0f} jobs/s  ratio to the floor {figure / floor:.2f},"
              f" to the guarded floor {figure / guarded_floor:.2f}")
    print(f"  {size['steps']} chained `true` steps, start to OK: {total:.2f} s; per step {per_step * 1000:.1f} ms")
    print(f"  one claim, 1-step workflow: {one * 1000:.1f} ms; 10,000-step workflow: {long * 1000:.1f} ms  ratio {long / one:.2f}")


if __name__ == "__main__":
    main()
