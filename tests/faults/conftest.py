"""The fault suite's fixtures (DOMAIN §5): a PostgreSQL cluster and a Redis of its own, and the portal's
back-end processes started one by one, so that each can be killed, and the servers stopped, at will.

Nothing here touches the machine's own PostgreSQL on 5432 or Redis on 6379. The cluster and the
Redis server are the many-hosts harness's (tests/multihost/harness.py), on free ports.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.multihost.harness import PostgresCluster, RedisServer, wait_for

ROOT = Path(__file__).resolve().parents[2]
TAG = f"{os.getpid() % 100000}"
# The settings every process of the suite runs with: short leases and graces, so faults show in seconds.
LEASE_SECONDS = 4
SETTINGS = {
    "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
    "STEP_KILL_GRACE_SECONDS": "2",
    "HEARTBEAT_SECONDS": "2",
    "DISPATCHER_POLL_MS": "200",
    "DISPATCHER_SWEEP_SECONDS": "2",
    "SCHEDULER_CLAIM_SECONDS": "20",
    "Q_TIMEOUT": "120",
    "JOB_TIME_LIMIT_SECONDS": "90",
    "JOB_WORKER_BUDGET_SECONDS": "10",
}
COMMANDS = {
    "worker": ["run_worker"],
    "dispatcher": ["run_dispatcher"],
    "clock": ["run_heartbeat"],
    "publisher": ["publish_outbox", "--loop"],
}
STEP = """#!/bin/sh
# step.sh MARKS GENERATION SECONDS MARKER: a line at its start (with its session) and at its end.
echo "start $PORTAL_SPOOL/$2 $PORTAL_STATE $$ $(ps -o sid= -p $$ | tr -d ' ')" >> "$1"
sleep "$3"
echo "end $PORTAL_SPOOL/$2 $PORTAL_STATE $$" >> "$1"
"""


def why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux (parent-death signals, pg_createcluster)"
    if os.geteuid() != 0:
        return "needs root to create a PostgreSQL cluster of its own (pg_createcluster)"
    missing = [tool for tool in ("pg_createcluster", "pg_ctlcluster", "redis-server", "pgrep", "ps") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


REASON = why_not()


def pytest_collection_modifyitems(config, items) -> None:
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    for item in items:
        if "tests/faults/" not in item.nodeid:
            continue
        if not on_postgres:
            item.add_marker(pytest.mark.skip(
                reason="the fault suite runs on PostgreSQL only (a cluster of its own is restarted under running steps): "
                "run it with DATABASE_URL=postgres://... as CI's slow suite does"
            ))
        elif REASON and not os.environ.get("CI"):
            item.add_marker(pytest.mark.skip(reason=REASON))


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(name=f"faults{TAG}", port=free_port(), listen="127.0.0.1")
    cluster.create()
    cluster.sql("CREATE DATABASE portal_template", database="postgres")
    env = base_env(cluster.url().replace("/portal", "/portal_template"), redis_url=None, data_dir=Path("/tmp"))
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    yield cluster
    cluster.drop()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), listen="127.0.0.2")  # a second loopback address: Redis binds each once
    server.start()
    yield server
    server.stop()


def base_env(database_url: str, *, redis_url: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME", "LANG", "TZ"}}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        DEBUG="1",
        PYTHONUNBUFFERED="1",
        PORTAL_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        **SETTINGS,
    )
    if redis_url:
        env.update(Q_BROKER="redis", REDIS_URL=redis_url)
    env.update(extra)
    return env


@dataclass
class Portal:
    """The portal's back-end processes on the suite's servers, each started, killed and restarted on its own."""

    cluster: PostgresCluster
    redis: RedisServer
    data_dir: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, *names: str) -> None:
        for name in names:
            self._spawn(name, COMMANDS[name])

    def start_code(self, name: str, code: str) -> subprocess.Popen:
        """``manage.py shell -c code`` in the background (a writer of messages, say), stopped with the rest."""
        return self._spawn(name, ["shell", "-c", textwrap.dedent(code)])

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115  - closed with the process's end
        self.processes[name] = subprocess.Popen(
            [sys.executable, "manage.py", *argv], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.processes[name]

    def kill9(self, name: str) -> None:
        process = self.processes.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            try:
                os.killpg(process.pid, signal.SIGKILL)  # whatever of its group is left
            except (ProcessLookupError, PermissionError):
                pass
        self.processes.clear()

    def alive(self, name: str) -> bool:
        return name in self.processes and self.processes[name].poll() is None

    def manage(self, *argv: str, code: str | None = None) -> str:
        command = [sys.executable, "manage.py", *argv] + (["-c", textwrap.dedent(code)] if code else [])
        done = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        return self.cluster.sql(statement, params)

    def statuses(self) -> collections.Counter:
        return collections.Counter(dict(self.sql("SELECT status, COUNT(*) FROM scheduling_job GROUP BY status")))

    def log(self) -> str:
        return "".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:] for p in sorted(self.data_dir.glob("*.log")))

    def load_jobs(self, spool: str, *, count: int, seconds: float, marks: Path, marker: str, steps: int = 1) -> None:
        """A spool of ``steps`` chained steps, each running step.sh for ``seconds``, and ``count`` jobs due now, in order."""
        script = self.data_dir / "step.sh"
        script.write_text(STEP)
        script.chmod(0o755)
        marks.touch()
        sections = []
        for number in range(1, steps + 1):
            following = f"next={number + 1}\n" if number < steps else ""
            sections.append(f"[{number}]\ntext=Step{number}\ncommand={script} {marks} <Generation> {seconds} {marker}\n{following}")
        workflow = self.data_dir / f"{spool}.ini"
        workflow.write_text("\n".join(sections))
        self.manage("shell", code=f"""
            from scheduling.workflows.services import job_add, job_start, workflow_load
            spool = workflow_load(spool_name={spool!r}, path={str(workflow)!r}, actor="test").spool
            for _ in range({count}):
                job_start(job=job_add(spool=spool, state=1, actor="test"), actor="test", named=False)
        """)


@pytest.fixture
def portal(cluster, redis, tmp_path) -> Iterator[Portal]:
    cluster.sql("DROP DATABASE IF EXISTS portal WITH (FORCE)", database="postgres")
    cluster.sql("CREATE DATABASE portal TEMPLATE portal_template", database="postgres")
    subprocess.run(["redis-cli", "-h", "127.0.0.2", "-p", str(redis.port), "FLUSHALL"], capture_output=True, timeout=10)
    data_dir = tmp_path / "portal"
    data_dir.mkdir()
    portal = Portal(cluster, redis, data_dir, base_env(cluster.url(), redis_url=redis.url("127.0.0.2"), data_dir=data_dir))
    yield portal
    portal.stop()


def marks_of(path: Path) -> dict[tuple[str, str], list[tuple[str, ...]]]:
    """(spool/generation, state) -> [(start|end, pid[, session])] in the order the steps wrote them."""
    seen: dict[tuple[str, str], list[tuple[str, ...]]] = collections.defaultdict(list)
    for line in path.read_text().splitlines():
        event, generation, state, *rest = line.split()
        seen[(generation, state)].append((event, *rest))
    return seen


def ran_once_each(marks: dict) -> bool:
    return all([event for event, *_ in events] == ["start", "end"] for events in marks.values())


def pgrep(*argv: str) -> list[str]:
    done = subprocess.run(["pgrep", *argv], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


def wait(what: str, check, seconds: float = 60, every: float = 0.2):
    return wait_for(what, check, seconds=seconds, every=every)
