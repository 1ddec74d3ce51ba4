"""rows_insert, rows_update and rows_set write what bulk_create, bulk_update and update would, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from monitoring.batches.models import BatchAlert
from portal.lib.bulk import rows_insert, rows_set, rows_update

pytestmark = pytest.mark.django_db


def test_rows_update_writes_each_row_its_own_values_nulls_included(make_config, arrive, now):
    now("2026-03-02T12:00:00Z")
    first, second = make_config("A", sources=("a",)), make_config("B", sources=("b",))
    window = arrive("a", "2026-03-02T00:00:00Z").window
    alerts = list(BatchAlert.objects.order_by("config_id"))
    token = uuid.uuid4()
    due = dt.datetime(2026, 3, 2, 13, 30, 15, 123456, tzinfo=dt.UTC)
    alerts[0].state, alerts[0].window, alerts[0].sequence, alerts[0].due_at, alerts[0].claim_token = "OPEN", window, 3, due, token
    alerts[1].state, alerts[1].window, alerts[1].sequence, alerts[1].due_at, alerts[1].claim_token = "NONE", None, 0, None, None

    assert rows_update(alerts, ["state", "window", "sequence", "due_at", "claim_token"]) == 2

    stored = {a.config_id: a for a in BatchAlert.objects.all()}
    assert (stored[first.id].state, stored[first.id].window_id, stored[first.id].sequence) == ("OPEN", window.id, 3)
    assert (stored[first.id].due_at, stored[first.id].claim_token) == (due, token)
    assert (stored[second.id].state, stored[second.id].window_id, stored[second.id].due_at) == ("NONE", None, None)


def test_rows_insert_sets_keys_and_skips_conflicts_when_asked(now):
    from portal.models import OutboundMessage
    from tests.portal.payloads import control_message

    now("2026-03-02T12:00:00Z")
    first = [OutboundMessage(kind="control_message", dedupe_key=f"k{i}", payload=control_message()) for i in range(3)]

    assert rows_insert(first) == 3
    assert [m.pk for m in first] == list(OutboundMessage.objects.order_by("id").values_list("id", flat=True))
    again = [OutboundMessage(kind="control_message", dedupe_key=k, payload=control_message()) for k in ("k1", "k9")]

    assert rows_insert(again, ignore_conflicts=True) == 1
    assert sorted(OutboundMessage.objects.values_list("dedupe_key", flat=True)) == ["k0", "k1", "k2", "k9"]
    assert OutboundMessage.objects.get(dedupe_key="k1").payload == first[1].payload


def test_rows_set_gives_the_named_rows_the_same_values_and_leaves_the_others(make_config, now):
    now("2026-03-02T12:00:00Z")
    configs = [make_config(name, sources=(name.lower(),)) for name in ("A", "B", "C")]
    due = dt.datetime(2026, 3, 2, 13, 30, 15, 123456, tzinfo=dt.UTC)
    before = BatchAlert.objects.get(config_id=configs[2].id).due_at

    assert rows_set(BatchAlert, [configs[0].id, configs[1].id], {"due_at": due, "sequence": 4}) == 2

    stored = {a.config_id: (a.due_at, a.sequence) for a in BatchAlert.objects.all()}
    assert stored == {configs[0].id: (due, 4), configs[1].id: (due, 4), configs[2].id: (before, 0)}
