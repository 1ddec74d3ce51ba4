"""Fixtures of the many-hosts tests: a database, a broker and an SQS server of their own, and hosts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.multihost.harness import (
    Bridge,
    Host,
    PostgresCluster,
    RedisServer,
    can_make_hosts,
    host_env,
    manage,
    wait_for,
)

REASON = can_make_hosts()
TAG = f"{os.getpid() % 100000}"


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "tests/multihost/" in item.nodeid and REASON and not os.environ.get("CI"):
            item.add_marker(pytest.mark.skip(reason=REASON))


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    bridge = Bridge(name=f"brmh{TAG}"[-15:], subnet=f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}")
    bridge.up()
    yield bridge
    bridge.down()


@pytest.fixture(scope="module")
def cluster(bridge) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(name=f"mh{TAG}", port=free_port(), listen=bridge.address)
    cluster.create()
    yield cluster
    cluster.drop()


@pytest.fixture(scope="module")
def redis(bridge) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), listen=bridge.address)
    server.start()
    yield server
    server.stop()


class SqsServer:
    """moto's SQS server, listening where the hosts can reach it."""

    def __init__(self, address: str) -> None:
        self.address, self.port = address, free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "0.0.0.0", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        from tests.multihost.harness import _port_open

        wait_for("moto", lambda: _port_open("127.0.0.1", self.port), seconds=30, every=0.1)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def client(self):
        import boto3

        return boto3.client("sqs", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def sqs(bridge) -> Iterator[SqsServer]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = SqsServer(bridge.address)
    yield server
    server.stop()


@pytest.fixture
def portal_db(cluster, tmp_path) -> dict[str, str]:
    """A freshly migrated portal database on the cluster; the env of commands run from the machine itself."""
    cluster.sql("DROP DATABASE IF EXISTS portal WITH (FORCE)", database="postgres")
    cluster.sql("CREATE DATABASE portal", database="postgres")
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "Q_SYNC"}}
    env.update(DEBUG="1", DATABASE_URL=cluster.url(), PORTAL_DATA_DIR=str(tmp_path / "machine"), Q_SYNC="1")
    manage(env, "migrate", "--noinput", "-v0")
    return env


@pytest.fixture
def make_hosts(bridge, cluster, redis, sqs, tmp_path) -> Iterator[Callable[..., list[Host]]]:
    """``make_hosts(2, broker="redis", queue_url=...)``: hosts host-a, host-b... on the shared services."""
    made: list[Host] = []

    def make(count: int, *, broker: str, queue_url: str, **extra: str) -> list[Host]:
        hosts = []
        for number in range(len(made), len(made) + count):
            host = Host(name=f"host-{chr(ord('a') + number)}", bridge=bridge, number=number, data_dir=tmp_path / f"h{number}")
            host.create()
            host.env = host_env(
                cluster=cluster, redis=redis if broker == "redis" else None, bridge=bridge, data_dir=host.data_dir,
                CONTROL_QUEUE_BACKEND="sqs", CONTROL_QUEUE_URL=queue_url.replace("127.0.0.1", bridge.address),
                AWS_ENDPOINT_URL=sqs.url, AWS_REGION="us-east-1", **extra,
            )
            made.append(host)
            hosts.append(host)
        return hosts

    yield make
    for host in made:
        host.destroy()


@pytest.fixture
def queue(sqs) -> str:
    name = f"control-{os.urandom(4).hex()}"
    return sqs.client().create_queue(QueueName=name)["QueueUrl"]


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path
