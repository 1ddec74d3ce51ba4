"""Retention (DOMAIN §9): `prune` deletes what is old on every table, keeps what is still needed, lowers no counter."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule
from prometheus_client.parser import text_string_to_metric_families

from monitoring.batches.models import BatchConfig, BatchFile, BatchWindow, WindowStatus
from monitoring.summaries.models import ServiceSummary, Transaction, TransactionStatus
from portal.models import AuditEntry, MessageStatus, OutboundMessage
from portal.publisher import outbox_publish_all
from portal.services import outbox_enqueue, schedules_setup
from scheduling.scheduler.models import TaskTransition
from scheduling.workflows.dispatcher import jobs_dispatch
from scheduling.workflows.models import Job, JobAttempt, JobStatus
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db

LONG_AFTER = "2026-06-10T12:00:00Z"  # 99 days after the history below: everything finished is past 90 days


@pytest.fixture
def history(now, control_queue_file, settings):
    """Three days of the demo portal in March: windows, files, transactions, summaries, jobs, messages."""
    settings.PRUNE_BATCH_SIZE = 7  # many small batches
    now("2026-03-02T09:00:00Z")
    call_command("load_demo", verbosity=0)
    now("2026-03-03T12:00:00Z")
    call_command("heartbeat", "--once", verbosity=0)
    jobs_dispatch()
    assert outbox_publish_all().sent > 0
    finished = Job.objects.get(spool__name="demo")
    Job.objects.filter(id=finished.id).update(status=JobStatus.OK, finished_at=finished.updated_at)  # generation 1 reached its end
    outbox_enqueue(kind="control_message", dedupe_key="still-pending", payload=control_message())
    Transaction.objects.filter(id__in=Transaction.objects.filter(status=TransactionStatus.COMPLETED).values("id")[:3]).update(
        status=TransactionStatus.PENDING, completed_at=None
    )


def counters(client) -> dict[tuple, float]:
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.type in ("counter", "histogram")
        for sample in family.samples
        if sample.name.startswith("portal_")
    }


def needed_windows() -> set[int]:
    latest = set(BatchConfig.objects.exclude(latest_window=None).values_list("latest_window_id", flat=True))
    return latest | set(BatchWindow.objects.filter(status=WindowStatus.OPEN).values_list("id", flat=True))


def test_prune_deletes_what_is_old_on_every_table_and_keeps_what_is_needed(client, history, now):
    before_counters = counters(client)
    kept_windows = needed_windows()
    held = set(BatchFile.objects.filter(held=True).values_list("id", flat=True))
    pending_transactions = set(Transaction.objects.filter(status=TransactionStatus.PENDING).values_list("id", flat=True))
    error_attempts = set(JobAttempt.objects.exclude(job__status=JobStatus.OK).values_list("id", flat=True))
    audit = AuditEntry.objects.count()
    assert JobAttempt.objects.filter(job__status=JobStatus.OK).exists() and error_attempts
    assert BatchWindow.objects.exclude(id__in=kept_windows).exists()

    call_command("prune", "--now", LONG_AFTER, verbosity=0)

    assert not OutboundMessage.objects.filter(status=MessageStatus.SENT).exists()
    assert OutboundMessage.objects.filter(dedupe_key="still-pending", status=MessageStatus.PENDING).exists()
    assert not TaskTransition.objects.exists()
    assert not JobAttempt.objects.filter(job__status=JobStatus.OK).exists()
    assert set(JobAttempt.objects.values_list("id", flat=True)) == error_attempts  # a job in Error keeps its history
    assert not ServiceSummary.objects.exists()
    assert set(Transaction.objects.values_list("id", flat=True)) == pending_transactions
    assert set(BatchWindow.objects.values_list("id", flat=True)) == kept_windows
    assert set(BatchFile.objects.filter(window=None).values_list("id", flat=True)) == held
    assert not BatchFile.objects.exclude(window=None).exclude(window_id__in=kept_windows).exists()
    assert AuditEntry.objects.count() == audit  # AUDIT_PRUNE_AFTER_DAYS unset: kept for ever
    assert counters(client) == before_counters

    now(LONG_AFTER)
    call_command("heartbeat", "--once", verbosity=0)  # what is left still makes a working portal
    jobs_dispatch()
    outbox_publish_all()
    assert counters(client)[("portal_messages_published_total", (("kind", "control_message"),))] >= before_counters[
        ("portal_messages_published_total", (("kind", "control_message"),))
    ]


def test_nothing_younger_than_prune_after_days_is_deleted(history, settings):
    settings.AUDIT_PRUNE_AFTER_DAYS = 30
    tables = [OutboundMessage, TaskTransition, JobAttempt, ServiceSummary, Transaction, BatchWindow, BatchFile, AuditEntry]
    before = {model: model.objects.count() for model in tables}

    call_command("prune", "--now", "2026-04-15T00:00:00Z", verbosity=0)  # 6 weeks after: within PRUNE_AFTER_DAYS

    assert {model: model.objects.count() for model in tables if model is not AuditEntry} == {
        model: count for model, count in before.items() if model is not AuditEntry
    }
    assert AuditEntry.objects.count() == 0  # the audit's own limit, when set


def test_audit_rows_older_than_their_own_limit_go_only_when_it_is_set(settings, operator, now):
    from portal.services import audit_record

    now("2026-01-01T00:00:00Z")
    audit_record(actor=operator, action="job.pause", object_type="job", object_id="1")
    now("2026-03-01T00:00:00Z")
    audit_record(actor=operator, action="job.start", object_type="job", object_id="1")

    call_command("prune", "--now", "2026-03-15T00:00:00Z", verbosity=0)
    assert AuditEntry.objects.count() == 2
    settings.AUDIT_PRUNE_AFTER_DAYS = 30
    call_command("prune", "--now", "2026-03-15T00:00:00Z", verbosity=0)
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["job.start"]


@pytest.mark.parametrize("bad", ["yesterday", "2026-06-10T12:00:00", "2026-13-01T00:00:00Z"])
def test_a_bad_now_is_a_cli_error_naming_it(bad):
    with pytest.raises(CommandError, match="--now"):
        call_command("prune", "--now", bad)


def test_prune_runs_daily_by_a_schedule_declared_by_name(now):
    schedules_setup()
    schedule = Schedule.objects.get(name="prune")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("portal.tasks.prune", Schedule.MINUTES, 24 * 60)
    planned = schedule.next_run

    assert dict(schedules_setup())["prune"] is False  # updated, not created again
    assert Schedule.objects.get(name="prune").next_run == planned


def test_the_task_prunes_as_the_command_does(history, now):
    from portal.tasks import prune

    now(LONG_AFTER)
    deleted = prune()

    assert deleted["sent messages"] > 0 and deleted["task transitions"] > 0 and deleted["batch windows"] > 0
    assert set(deleted) >= {"summary events", "transactions", "job attempts", "batch files"}
    assert prune() == dict.fromkeys(deleted, 0)

