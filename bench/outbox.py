"""Benchmark: the outbox's publisher beside the floors of its backends, and /healthz with a deep outbox.

Run on PostgreSQL in a database of its own (its name ends in ``_bench``; the outbox is emptied):

    createdb -h 127.0.0.1 -U postgres outbox_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/outbox_bench .venv/bin/python bench/outbox.py [--size N]

Prints, in one run:
- the publisher with the local backend (claim a lane, write the lines, fsync, mark SENT, count)
  beside a plain loop that SELECTs the same pending rows and writes them to a file, with an
  fsync per batch of the same size (target ratio >= 0.5);
- the publisher with the sqs backend against moto's server beside a bare ``send_message_batch``
  loop of 10 with the same bodies; a drainer thread keeps the queue shallow in both (target >= 0.8);
- /healthz and the console's refresh with ``--pending`` messages pending (200,000 by default)
  beside the same calls with an empty outbox (target: each under 100 ms).

``--size 300 --pending 2000`` is the smoke run CI makes: it checks that the figures are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

import django  # noqa: E402

django.setup()

import boto3  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from portal import clock  # noqa: E402
from portal.lib.bulk import rows_insert  # noqa: E402
from portal.models import MessageStatus, OutboundMessage, OutboxLane, message_body  # noqa: E402
from portal.publisher import outbox_publish_all  # noqa: E402
from portal.services import PendingMessage, outbox_enqueue_bulk  # noqa: E402
from tests.portal.payloads import control_message  # noqa: E402


def empty_outbox() -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE monitoring_servicesummary SET message_id = NULL")
        cursor.execute("DELETE FROM portal_outboundmessage")
        cursor.execute("DELETE FROM portal_outboxlane")
        cursor.execute("VACUUM ANALYZE portal_outboundmessage")  # each figure from a clean table, as autovacuum keeps it


def enqueue(count: int, prefix: str) -> None:
    for start in range(0, count, 5000):
        batch = [
            PendingMessage("control_message", f"{prefix}:{n}", control_message(window_id=n + 1))
            for n in range(start, min(start + 5000, count))
        ]
        outbox_enqueue_bulk(messages=batch)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def plain_file_loop(path: Path, batch: int, *, mark: bool = False) -> tuple[int, float]:
    """The floor: SELECT the pending rows a batch at a time (keyset by id), write each body as a line, fsync;
    with ``mark``, also one ``UPDATE ... SET status = 'SENT' WHERE id IN (...)`` per batch."""
    began, written, last = time.perf_counter(), 0, 0
    with open(path, "a", encoding="utf-8") as handle:
        while True:
            rows = list(
                OutboundMessage.objects.filter(status=MessageStatus.PENDING, id__gt=last).order_by("id").values_list("id", "payload")[:batch]
            )
            if not rows:
                break
            handle.write("".join(message_body(payload) + "\n" for _, payload in rows))
            handle.flush()
            os.fsync(handle.fileno())
            if mark:
                OutboundMessage.objects.filter(id__in=[i for i, _ in rows]).update(status=MessageStatus.SENT)
            written, last = written + len(rows), rows[-1][0]
    return written, time.perf_counter() - began


def published(count: int) -> tuple[int, float]:
    began = time.perf_counter()
    sent = outbox_publish_all().sent
    elapsed = time.perf_counter() - began
    if sent != count:
        sys.exit(f"the publisher sent {sent} of {count}")
    return sent, elapsed


def bench_local(size: int) -> None:
    empty_outbox()
    with tempfile.TemporaryDirectory() as folder:
        settings.CONTROL_QUEUE_BACKEND = "local"
        settings.CONTROL_QUEUE_FILE = Path(folder) / "control-queue.jsonl"
        enqueue(size, "local")
        floor_count, floor_seconds = plain_file_loop(Path(folder) / "plain.jsonl", settings.OUTBOX_BATCH_SIZE)
        _, marking_seconds = plain_file_loop(Path(folder) / "marked.jsonl", settings.OUTBOX_BATCH_SIZE, mark=True)
        OutboundMessage.objects.update(status=MessageStatus.PENDING)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE portal_outboundmessage")
        sent, seconds = published(size)
        lines = sum(1 for _ in open(settings.CONTROL_QUEUE_FILE, encoding="utf-8"))
    floor, marking, mine = rate(floor_count, floor_seconds), rate(floor_count, marking_seconds), rate(sent, seconds)
    print(f"local backend, {size} messages, batches of {settings.OUTBOX_BATCH_SIZE} ({lines} lines written)")
    print(f"  plain SELECT + write + fsync loop  {floor:10.0f} msgs/s")
    print(f"  the same + UPDATE status per batch {marking:10.0f} msgs/s")
    print(f"  publisher                          {mine:10.0f} msgs/s")
    print(f"  ratio publisher / plain loop       {mine / floor:10.2f}   (target >= 0.5)")
    print(f"  ratio publisher / loop that marks  {mine / marking:10.2f}")


class MotoServer:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        sys.exit("moto server did not start")

    def client(self):
        return boto3.client("sqs", region_name="us-east-1", endpoint_url=self.url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Drainer(threading.Thread):
    """Receives and deletes as messages arrive, so the queue stays shallow (as a consumer would keep it)."""

    def __init__(self, server: MotoServer, url: str) -> None:
        super().__init__(daemon=True)
        self.client, self.url, self.received, self.done = server.client(), url, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            batch = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                time.sleep(0.01)
                continue
            self.received += len(batch)
            self.client.delete_message_batch(
                QueueUrl=self.url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            )

    def stop(self) -> int:
        self.done.set()
        self.join(timeout=30)
        return self.received


def bare_batches(client, url: str, bodies: list[str]) -> float:
    began = time.perf_counter()
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body, "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "control_message"}}}
            for i, body in enumerate(bodies[start : start + 10])
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)
    return time.perf_counter() - began


def drained(server: MotoServer, queue: str, send) -> tuple[float, int]:
    """Time ``send(url)`` into a fresh queue that a drainer keeps shallow; moto slows down as a queue grows."""
    url = server.client().create_queue(QueueName=queue)["QueueUrl"]
    drainer = Drainer(server, url)
    drainer.start()
    began = time.perf_counter()
    send(url)
    elapsed = time.perf_counter() - began
    time.sleep(0.5)
    return elapsed, drainer.stop()


def bench_sqs(size: int) -> None:
    empty_outbox()
    server = MotoServer()
    try:
        settings.CONTROL_QUEUE_BACKEND, settings.AWS_ENDPOINT_URL, settings.AWS_REGION = "sqs", server.url, "us-east-1"
        enqueue(size, "sqs")
        bodies = [message_body(p) for p in OutboundMessage.objects.order_by("id").values_list("payload", flat=True)]
        drained(server, "warm-up", lambda url: bare_batches(server.client(), url, bodies[:100]))  # moto's first calls are slower
        floor_seconds, floor_received = drained(server, "bare", lambda url: bare_batches(server.client(), url, bodies))

        def publish(url: str) -> None:
            settings.CONTROL_QUEUE_URL = url
            published(size)

        seconds, received = drained(server, "control", publish)
    finally:
        server.stop()
    floor, mine = rate(size, floor_seconds), rate(size, seconds)
    print(f"sqs backend (moto server), {size} messages, send_message_batch of 10, each into a fresh queue drained as it fills")
    print(f"  bare send_message_batch loop       {floor:10.0f} msgs/s   ({floor_received} received meanwhile)")
    print(f"  publisher                          {mine:10.0f} msgs/s   ({received} received meanwhile)")
    print(f"  ratio publisher / bare loop        {mine / floor:10.2f}   (target >= 0.8)")


def fill_pending(count: int) -> None:
    now = clock.now()
    payload = control_message()
    for start in range(0, count, 20_000):
        rows_insert([
            OutboundMessage(
                kind="control_message", lane="control_message", dedupe_key=f"deep:{n}", payload=payload,
                status=MessageStatus.PENDING, created_at=now, next_attempt_at=now,
            )
            for n in range(start, min(start + 20_000, count))
        ])
    OutboxLane.objects.get_or_create(name="control_message")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE portal_outboundmessage")  # what autovacuum does after so many inserts


def median_ms(client: Client, path: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        answer = client.get(path, REMOTE_ADDR="127.0.0.1", HTTP_HOST="localhost")
        if answer.status_code not in (200, 503):
            sys.exit(f"{path} answered {answer.status_code}")
        times.append((time.perf_counter() - began) * 1000)
        json.loads(answer.content)
    return statistics.median(times)


def bench_healthz(pending: int, runs: int) -> None:
    empty_outbox()
    user, _ = get_user_model().objects.get_or_create(username="bench-viewer", defaults={"is_superuser": True, "is_staff": True})
    client = Client()
    client.force_login(user)
    paths = {"/healthz": "/healthz", "console refresh": "/monitor/data/"}
    empty = {name: median_ms(client, path, runs) for name, path in paths.items()}
    fill_pending(pending)
    deep = {name: median_ms(client, path, runs) for name, path in paths.items()}
    print(f"/healthz and the console with {pending} pending messages (median of {runs} calls, in-process)")
    for name in paths:
        print(f"  {name:16} empty outbox {empty[name]:7.1f} ms   {pending} pending {deep[name]:7.1f} ms   ratio {deep[name] / empty[name]:5.2f}   (target < 100 ms)")
    empty_outbox()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="20000", help="messages for the local backend (a twentieth of them for sqs), or small")
    parser.add_argument("--pending", type=int, default=200_000, help="pending messages for the /healthz figures")
    args = parser.parse_args()
    if args.size == "small":  # the CI smoke run
        args.size, args.pending = 300, 2000
    args.size = int(args.size)
    name = settings.DATABASES["default"]["NAME"]
    if connection.vendor != "postgresql" or not str(name).endswith("_bench"):
        sys.exit(f"run on a PostgreSQL database made for benchmarks (name ending in _bench), not {name!r}")
    call_command("migrate", verbosity=0)
    bench_local(args.size)
    bench_sqs(max(args.size // 20, 10))
    bench_healthz(args.pending, runs=5 if args.pending < 10_000 else 21)


if __name__ == "__main__":
    main()
