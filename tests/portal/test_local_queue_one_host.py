"""DOMAIN §9: the `local` queue backend is for one host; a second host using it is refused at start-up."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from portal.backends.local import HOST_SILENT_SECONDS, LocalQueueTaken, local_queue_claim
from portal.models import QueueHost

pytestmark = pytest.mark.django_db


def test_the_first_host_owns_the_file_and_a_second_is_refused_naming_the_first():
    assert local_queue_claim(host="host-a") == "host-a"
    assert local_queue_claim(host="host-a") == "host-a"  # the owner goes on

    with pytest.raises(LocalQueueTaken, match="for one host: host-a .*CONTROL_QUEUE_BACKEND=sqs"):
        local_queue_claim(host="host-b")
    assert QueueHost.objects.get(backend="local").host == "host-a"


def test_a_host_silent_for_long_hands_the_file_over():
    local_queue_claim(host="host-a")
    QueueHost.objects.update(seen_at=timezone.now() - dt.timedelta(seconds=HOST_SILENT_SECONDS + 1))

    assert local_queue_claim(host="host-b") == "host-b"
    with pytest.raises(LocalQueueTaken, match="host-b"):
        local_queue_claim(host="host-a")


def test_the_claim_reads_the_wall_clock_not_a_now_option(now):
    now("2040-01-01T00:00:00Z")  # a replayed scenario must not lock the file until 2040
    local_queue_claim(host="host-a")
    assert QueueHost.objects.get().seen_at < timezone.now() + dt.timedelta(minutes=1)


def test_publish_outbox_on_a_second_host_stops_at_start_up(control_queue_file, monkeypatch):
    local_queue_claim(host="host-a")
    monkeypatch.setattr("socket.gethostname", lambda: "host-b")
    with pytest.raises(CommandError, match="for one host: host-a"):
        call_command("publish_outbox")
    assert not control_queue_file.exists()
