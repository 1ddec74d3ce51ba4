"""Two reviewers, two publishers or two openers at the same instant on one PostgreSQL database (threads with
their own connections, as two clusters would be): every notification is written once and sent once."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from portal import clock
from portal.alerts.models import AlertEpisode
from portal.alerts.services import alert_open, alerts_review
from portal.models import OutboundMessage
from portal.publisher import outbox_publish_all
from tests.monitoring.test_batch_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

T0 = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)


def test_two_openers_of_one_condition_make_one_episode_and_one_notice_per_channel(rule, receiver):
    rule(channel_names=("hook",))
    clock.set_now(T0)

    episodes = run_together(*[lambda: alert_open(kind="JOB_ERROR", subject="job:1", summary="job 1 is Error")] * 4)

    assert len({e.id for e in episodes}) == 1
    assert AlertEpisode.objects.count() == 1
    assert OutboundMessage.objects.filter(kind="NOTIFICATION").count() == 1


def test_repeats_and_escalations_reviewed_by_two_clusters_at_once_are_sent_once(rule, receiver, smtp, control_queue_file):
    rule(channel_names=("hook",), repeat_minutes=10, escalate_after_minutes=15, escalate_to=("mail",))
    clock.set_now(T0)
    for i in range(30):
        alert_open(kind="JOB_ERROR", subject=f"job:{i}", summary=f"job {i} is Error")
    outbox_publish_all()

    for minutes in (10, 15, 20):
        clock.set_now(T0 + dt.timedelta(minutes=minutes))
        run_together(*[lambda at=clock.now(): alerts_review(now=at)] * 3)
        run_together(*[outbox_publish_all] * 3)

    told = Counter((p["subject"], p["event"]) for p in receiver.posts())
    assert told == Counter({(f"job:{i}", event): 1 for i in range(30) for event in ("opened",)}) + Counter(
        {(f"job:{i}", "repeated"): 2 for i in range(30)}
    )
    assert Counter(smtp.subjects()) == Counter({f"[portal] escalated: JOB_ERROR job:{i}": 1 for i in range(30)})
