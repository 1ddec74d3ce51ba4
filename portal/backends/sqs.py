"""Amazon SQS (or any SQS-compatible server) through boto3."""

from __future__ import annotations

import hashlib
import re

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from portal.backends import SendResult
from portal.models import OutboundMessage

SQS_BATCH_LIMIT = 10
DEDUPLICATION_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def deduplication_id(dedupe_key: str) -> str:
    """The dedupe key itself when SQS accepts it, else its SHA-256."""
    if DEDUPLICATION_ID.match(dedupe_key):
        return dedupe_key
    return hashlib.sha256(dedupe_key.encode()).hexdigest()


class SqsQueue:
    batch_limit = SQS_BATCH_LIMIT  # the publisher hands over this many at a time

    def __init__(self, queue_url: str | None = None) -> None:
        self.queue_url = queue_url or settings.CONTROL_QUEUE_URL
        self.fifo = self.queue_url.endswith(".fifo")
        self.client = boto3.client(
            "sqs",
            region_name=settings.AWS_REGION,
            endpoint_url=settings.AWS_ENDPOINT_URL or None,
            # Our own outbox retries with backoff; a hung queue must not hold a publisher.
            config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}),
        )

    def entry(self, message: OutboundMessage) -> dict:
        entry = {
            "Id": str(message.id),
            "MessageBody": message.body,
            "MessageAttributes": {"kind": {"DataType": "String", "StringValue": message.kind}},
        }
        if self.fifo:
            entry["MessageGroupId"] = message.kind
            entry["MessageDeduplicationId"] = deduplication_id(message.dedupe_key)
        return entry

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            chunk = messages[start : start + SQS_BATCH_LIMIT]
            results.extend(self.send_chunk(chunk))
        return results

    def send_chunk(self, chunk: list[OutboundMessage]) -> list[SendResult]:
        try:
            answer = self.client.send_message_batch(
                QueueUrl=self.queue_url, Entries=[self.entry(m) for m in chunk]
            )
        except (BotoCoreError, ClientError) as exc:
            return [SendResult(m.id, False, error=f"{type(exc).__name__}: {exc}") for m in chunk]
        results = [
            SendResult(int(ok["Id"]), True, ok["MessageId"]) for ok in answer.get("Successful", [])
        ]
        results += [
            SendResult(
                int(bad["Id"]),
                False,
                error=f"{bad.get('Code')}: {bad.get('Message', '')}",
                permanent=bool(bad.get("SenderFault")),
            )
            for bad in answer.get("Failed", [])
        ]
        return results
