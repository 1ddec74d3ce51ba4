"""Fixtures of the alerts' tests: a real SMTP server and a real HTTP receiver on loopback, channels and rules."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command

from portal import clock
from portal.alerts.config import alert_rule_create, notification_channel_create
from portal.alerts.models import AlertRule, NotificationChannel
from tests.conftest import free_port
from tests.monitoring.conftest import arrive, make_config  # noqa: F401  (fixtures shared with the batch tests)
from tests.scheduling.conftest import load_spool, recorder, write_workflow  # noqa: F401  (the same, for jobs and tasks)

SECRET = "s3cret-for-signing"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """An HTTP server in a thread on a loopback port, recording every request; it can be stopped and started again."""

    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(Received(self.command, self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            do_GET = do_POST = _record

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def posts(self) -> list[dict]:
        return [r.json() for r in self.requests if r.method == "POST"]

    def gets(self) -> list[Received]:
        return [r for r in self.requests if r.method == "GET"]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    server.start()
    yield server
    server.stop()


class Mailbox:
    """What aiosmtpd received: each mail's recipients and parsed message."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for _, message in self.mails]


@pytest.fixture
def smtp(settings) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on loopback; the portal's EMAIL_* settings point at it."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.DEFAULT_FROM_EMAIL = "portal@example.com"
    yield mailbox
    controller.stop()


@pytest.fixture
def channels(db, receiver, smtp) -> dict[str, NotificationChannel]:
    """A signed webhook to the receiver and an e-mail channel to the SMTP server."""
    return {
        "hook": notification_channel_create(actor="test", name="ops-hook", kind="webhook", target=receiver.url + "/portal", secret=SECRET),
        "mail": notification_channel_create(actor="test", name="ops-mail", kind="email", target="ops@example.com, lead@example.com"),
    }


@pytest.fixture
def rule(channels) -> Callable[..., AlertRule]:
    def make(name: str = "ops", channel_names: tuple[str, ...] = ("hook", "mail"), **fields) -> AlertRule:
        escalate = [channels[n] for n in fields.pop("escalate_to", ())]
        return alert_rule_create(actor="test", name=name, channels=[channels[n] for n in channel_names], escalate_to=escalate, **fields)

    return make


@pytest.fixture
def heartbeat(control_queue_file) -> Callable[[str], None]:
    """`heartbeat --once --now T` then `publish_outbox --now T`, as an operator would replay a scenario."""

    def run(at: str) -> None:
        call_command("heartbeat", "--once", "--now", at, verbosity=0)
        call_command("publish_outbox", "--now", at, verbosity=0)
        clock.set_now(clock.parse_instant(at))

    return run


def publish(at: str) -> None:
    call_command("publish_outbox", "--now", at, verbosity=0)
