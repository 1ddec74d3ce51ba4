"""Fixtures every feature's tests share: users by role, API clients, the clock, real servers."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from portal import clock, roles

IN_CI = bool(os.environ.get("CI"))


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items) -> None:
    """PostgreSQL tests skip on SQLite (CI runs the suite on both); browser tests skip without Chromium, never in CI.

    Decided at collection, before any database fixture: a skipped transactional test must not flush.
    """
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
            # A flush without it drops the roles and interfaces the migrations made, and the
            # re-created content types then clash with the next test that restores them.
            raise pytest.UsageError(f"{item.nodeid}: a transactional test needs serialized_rollback=True")
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://... (CI does)"))
        if "browser" in item.keywords and not os.path.exists(CHROMIUM) and not IN_CI:
            item.add_marker(pytest.mark.skip(reason="Chromium is not installed (apt-get install chromium)"))


@pytest.fixture(autouse=True)
def _real_clock_after_each_test() -> Iterator[None]:
    yield
    clock.set_now(None)


@pytest.fixture
def now() -> Callable[..., dt.datetime]:
    """Set the portal's clock: ``now("2026-03-02T10:00:00Z")`` fixes it there and returns it."""

    def set_clock(text: str) -> dt.datetime:
        instant = clock.parse_instant(text)
        clock.set_now(instant)
        return instant

    return set_clock


@pytest.fixture
def control_queue_file(settings, tmp_path):
    settings.CONTROL_QUEUE_BACKEND = "local"
    settings.CONTROL_QUEUE_FILE = tmp_path / "control-queue.jsonl"
    return settings.CONTROL_QUEUE_FILE


def make_user(username: str, *role_names: str) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username)
    for name in role_names:
        user.groups.add(Group.objects.get(name=name))
    return user


@pytest.fixture
def viewer(db) -> User:
    return make_user("viewer", roles.VIEWER)


@pytest.fixture
def feeder(db) -> User:
    return make_user("feeder", roles.FEEDER)


@pytest.fixture
def operator(db) -> User:
    return make_user("operator", roles.OPERATOR)


@pytest.fixture
def administrator(db) -> User:
    return make_user("administrator", roles.ADMINISTRATOR)


@pytest.fixture
def api_client_for() -> Callable[[User | None], APIClient]:
    """An API client carrying a JWT for ``user`` (None: anonymous)."""

    def build(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return build


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """moto's SQS-compatible server in its own process on a loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def sqs_server(monkeypatch) -> Iterator[MotoServer]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sqs_queue(sqs_server, settings) -> Callable[..., str]:
    """Create a queue on the moto server and point the portal's sqs backend at it."""
    import boto3

    def create(name: str = "control", fifo: bool = False) -> str:
        client = boto3.client("sqs", region_name="us-east-1", endpoint_url=sqs_server.url)
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if fifo else {}
        url = client.create_queue(QueueName=name + (".fifo" if fifo else ""), Attributes=attributes)["QueueUrl"]
        settings.CONTROL_QUEUE_BACKEND = "sqs"
        settings.CONTROL_QUEUE_URL = url
        settings.AWS_ENDPOINT_URL = sqs_server.url
        settings.AWS_REGION = "us-east-1"
        return url

    return create


@pytest.fixture
def sqs_receive(sqs_server) -> Callable[[str], list[dict]]:
    """Drain a queue on the moto server: every message, with its attributes."""
    return lambda queue_url: receive_all(sqs_server, queue_url)


def receive_all(sqs_server: MotoServer, queue_url: str) -> list[dict]:
    import boto3

    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=sqs_server.url)
    received: list[dict] = []
    while True:
        answer = client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        batch = answer.get("Messages", [])
        if not batch:
            return received
        received += batch
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


@pytest.fixture
def chromium():
    """Debian's Chromium driven by Playwright; never a downloaded browser.

    Started per test: Playwright's sync API switches the context Django keeps
    its connections in, and a session-long switch would hide the connection
    that holds the data serialized for ``serialized_rollback``.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
