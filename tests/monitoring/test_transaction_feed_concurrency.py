"""Two feeds of the same reference at the same time, on PostgreSQL's real locking.

serialized_rollback: these tests commit, and the flush after each would drop the
roles and interfaces that migrations ship; they are restored before each test.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from monitoring.summaries.models import Transaction
from monitoring.summaries.services import FeedRefused, transactions_feed
from tests.monitoring.conftest import transaction_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

COMPLETED = {"status": "COMPLETED", "completed_at": "2026-03-02T09:30:00Z"}
FAILED = {"status": "FAILED", "completed_at": "2026-03-02T09:30:00Z"}


class HeldFeed(threading.Thread):
    """Feeds ``items`` in its own connection and keeps the transaction open until released."""

    def __init__(self, items: list[dict]) -> None:
        super().__init__(daemon=True)
        self.items = items
        self.fed = threading.Event()
        self.release = threading.Event()
        self.report = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.report = transactions_feed(items=self.items)
                self.fed.set()
                self.release.wait(30)
        finally:
            connections.close_all()


class Feed(threading.Thread):
    def __init__(self, items: list[dict]) -> None:
        super().__init__(daemon=True)
        self.items = items
        self.report = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.report = transactions_feed(items=self.items)
        except FeedRefused as exc:
            self.error = exc
        finally:
            connections.close_all()


def wait_until_blocked_on_a_lock(count: int = 1) -> None:
    """Poll PostgreSQL until another backend of this database waits for a lock."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.02)  # polling a real server, not moving the portal's clock
    raise AssertionError("the second feed never waited for the first")


def test_two_feeds_creating_the_same_reference_at_once_store_it_once():
    first = HeldFeed([transaction_item("RACE")])
    first.start()
    assert first.fed.wait(20)
    second = Feed([transaction_item("RACE", **COMPLETED)])
    second.start()
    wait_until_blocked_on_a_lock()

    first.release.set()
    first.join(20)
    second.join(20)

    assert second.error is None
    assert [o.result for o in first.report.outcomes] == ["created"]
    assert [o.result for o in second.report.outcomes] == ["updated"]
    assert second.report.outcomes[0].id == first.report.outcomes[0].id
    assert list(Transaction.objects.values_list("reference", "status")) == [("RACE", "COMPLETED")]


def test_a_contradiction_racing_an_update_is_refused():
    transactions_feed(items=[transaction_item("RACE")])
    first = HeldFeed([transaction_item("RACE", **COMPLETED)])
    first.start()
    assert first.fed.wait(20)
    second = Feed([transaction_item("RACE", **FAILED)])
    second.start()
    wait_until_blocked_on_a_lock()

    first.release.set()
    first.join(20)
    second.join(20)

    assert [o.result for o in first.report.outcomes] == ["updated"]
    assert second.error is not None and second.error.errors[0].field == "status"
    assert Transaction.objects.get().status == "COMPLETED"
