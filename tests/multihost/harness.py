"""Hosts on one machine for the many-hosts tests (DOMAIN §9): a PostgreSQL cluster and a Redis of
their own, reachable over a bridge, and each host a network namespace with a PID and UTS namespace
of its own (its own host name and PIDs), running the Procfile's back-end processes under honcho.

Everything here is torn down by the fixtures that create it; nothing touches the machine's own
PostgreSQL on 5432 or Redis on 6379.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_VERSION = sorted(os.listdir("/usr/lib/postgresql"))[-1] if os.path.isdir("/usr/lib/postgresql") else ""
BACKEND_PROCESSES = ("worker", "dispatcher", "clock", "publisher")


def run(*argv: str, check: bool = True, **options) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=120, **options)


def wait_for(what: str, check: Callable[[], object], seconds: float = 90, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def can_make_hosts() -> str | None:
    """Why the many-hosts tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root for network and PID namespaces"
    missing = [tool for tool in ("ip", "unshare", "pg_createcluster", "redis-server") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


@dataclass
class Bridge:
    """A bridge with an address on the machine's side: the hosts reach the servers there."""

    name: str
    subnet: str  # the first three octets, e.g. "10.231.7"

    @property
    def address(self) -> str:
        return f"{self.subnet}.1"

    def up(self) -> None:
        self.down()
        run("ip", "link", "add", self.name, "type", "bridge")
        run("ip", "addr", "add", f"{self.address}/24", "dev", self.name)
        run("ip", "link", "set", self.name, "up")

    def down(self) -> None:
        run("ip", "link", "del", self.name, check=False)


@dataclass
class PostgresCluster:
    """A cluster of its own on another port, listening on loopback and the bridge, trusting both."""

    name: str
    port: int
    listen: str

    def create(self) -> None:
        self.drop()
        run(
            "pg_createcluster", PG_VERSION, self.name, "-p", str(self.port),
            "-o", f"listen_addresses=127.0.0.1,{self.listen}", "-o", "max_connections=200", "-o", "fsync=off",
            "--", "--auth=trust",
        )
        hba = Path(f"/etc/postgresql/{PG_VERSION}/{self.name}/pg_hba.conf")
        hba.write_text(hba.read_text() + f"\nhost all all {self.listen.rsplit('.', 1)[0]}.0/24 trust\n")
        self.start()
        self.sql("CREATE DATABASE portal", database="postgres")

    def start(self) -> None:
        run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.name, "start")
        wait_for("PostgreSQL", self.reachable, seconds=30, every=0.2)

    def stop(self) -> None:
        run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.name, "stop", "-m", "fast", check=False)

    def drop(self) -> None:
        run("pg_dropcluster", "--stop", PG_VERSION, self.name, check=False)

    def reachable(self) -> bool:
        try:
            psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=1).close()
            return True
        except psycopg2.OperationalError:
            return False

    def url(self, host: str = "127.0.0.1") -> str:
        return f"postgres://postgres@{host}:{self.port}/portal"

    def connect(self, database: str = "portal"):
        """A connection of the test's own (in a transaction until committed: to hold a lock, say)."""
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database)

    def sql(self, statement: str, params: tuple = (), database: str = "portal") -> list[tuple]:
        connection = self.connect(database)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()


@dataclass
class RedisServer:
    port: int
    listen: str
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", f"127.0.0.1 {self.listen}", "--save", "", "--appendonly", "no",
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for("Redis", lambda: _port_open("127.0.0.1", self.port), seconds=20, every=0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def url(self, host: str) -> str:
        return f"redis://{host}:{self.port}/0"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Host:
    """A network namespace on the bridge; its processes run in a PID and UTS namespace of their own."""

    name: str
    bridge: Bridge
    number: int
    data_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"{self.bridge.name}-{self.name}"

    @property
    def address(self) -> str:
        return f"{self.bridge.subnet}.{10 + self.number}"

    @property
    def veth(self) -> str:
        return f"v{self.bridge.name[-6:]}{self.number}"

    def create(self) -> None:
        self.destroy()
        run("ip", "netns", "add", self.netns)
        run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        run("ip", "link", "set", self.veth, "master", self.bridge.name, "up")
        self.exec_ns("ip", "addr", "add", f"{self.address}/24", "dev", "eth0")
        self.exec_ns("ip", "link", "set", "eth0", "up")
        self.exec_ns("ip", "link", "set", "lo", "up")
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def exec_ns(self, *argv: str) -> None:
        run("ip", "netns", "exec", self.netns, *argv)

    def start(self, argv: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
        """Run ``argv`` as this host: its own host name, its own PID 1 (the whole host dies with it)."""
        log = open(self.data_dir / f"{log_name}.log", "ab")  # noqa: SIM115  - closed with the process's end
        script = f'hostname {self.name} && exec "$@"'
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child",
             "sh", "-c", script, "sh", *argv],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start_backend(self, env: dict[str, str], processes: tuple[str, ...] = BACKEND_PROCESSES) -> subprocess.Popen:
        """The Procfile's back-end processes (no web) under honcho, as on a real host."""
        procfile = self.data_dir / "Procfile"
        entries = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line)
        procfile.write_text("".join(f"{name}:{entries[name]}\n" for name in processes))
        return self.start([str(BIN / "honcho"), "start", "-f", str(procfile), "-d", str(ROOT)], env, "honcho")

    def crash(self) -> None:
        """kill -9 of the host's PID 1: the kernel ends every process of the host at once, as a power cut."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        self.processes.clear()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()

    def cut_off(self) -> None:
        run("ip", "link", "set", self.veth, "down")

    def reconnect(self) -> None:
        run("ip", "link", "set", self.veth, "up")

    def destroy(self) -> None:
        self.crash()
        run("ip", "link", "del", self.veth, check=False)
        run("ip", "netns", "del", self.netns, check=False)

    def log(self) -> str:
        return "".join(path.read_text(errors="replace")[-6000:] for path in sorted(self.data_dir.glob("*.log")))


def host_env(*, cluster: PostgresCluster, redis: RedisServer | None, bridge: Bridge, data_dir: Path, **extra: str) -> dict:
    keep = {"PATH", "HOME", "LANG", "TZ", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    env.update(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        DEBUG="1",
        PYTHONUNBUFFERED="1",
        PORTAL_DATA_DIR=str(data_dir),
        DATABASE_URL=cluster.url(bridge.address),
        **{"Q_WORKERS": "2", **extra},
    )
    if redis is not None:
        env.update(Q_BROKER="redis", REDIS_URL=redis.url(bridge.address))
    return env


def manage(env: dict[str, str], *argv: str, code: str | None = None) -> str:
    """A management command from the machine itself (not a host), on the shared database."""
    command = [sys.executable, "manage.py", *argv] + (["-c", textwrap.dedent(code)] if code else [])
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
