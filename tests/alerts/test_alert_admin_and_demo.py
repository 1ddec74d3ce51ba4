"""The alerts in the admin (by role, through the services) and in the demo of `make run`."""

from __future__ import annotations

import logging

import pytest

from portal.alerts.models import AlertEpisode, AlertRule, NotificationChannel
from portal.alerts.services import alert_open
from portal.models import AuditEntry
from portal.publisher import outbox_publish_all
from portal.services import demo_load

pytestmark = pytest.mark.django_db

CHANNELS = "/admin/alerts/notificationchannel/"
RULES = "/admin/alerts/alertrule/"
ALERTS = "/admin/alerts/alertepisode/"


def logged_in(client, user):
    client.force_login(user)
    return client


def test_readers_see_the_three_pages_only_administrators_add(client, viewer, feeder):
    reader = logged_in(client, viewer)
    for page in (CHANNELS, RULES, ALERTS):
        assert reader.get(page).status_code == 200, page
    assert reader.get(CHANNELS + "add/").status_code == 403
    client.logout()
    assert logged_in(client, feeder).get(ALERTS).status_code == 302  # to the login page: a Feeder may not enter the admin


def test_an_administrator_adds_a_channel_through_the_service_and_its_secret_never_comes_back(client, administrator):
    admin = logged_in(client, administrator)
    answer = admin.post(
        CHANNELS + "add/",
        {"name": "hook", "kind": "webhook", "target": "https://hooks.example.com/services/T0/B0/XYZ", "secret": "s3cret", "enabled": "on"},
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    channel = NotificationChannel.objects.get()
    assert (channel.secret, AuditEntry.objects.get(action="notification_channel.create").actor_name) == ("s3cret", "administrator")

    page = admin.get(f"{CHANNELS}{channel.id}/change/").content.decode()
    assert "s3cret" not in page and "XYZ" not in page
    answer = admin.post(
        f"{CHANNELS}{channel.id}/change/",
        {"name": "hook", "kind": "webhook", "target": "https://hooks.example.com/services/***", "secret": "", "enabled": "on"},
    )
    assert answer.status_code == 302
    channel.refresh_from_db()
    assert (channel.target, channel.secret) == ("https://hooks.example.com/services/T0/B0/XYZ", "s3cret")

    answer = admin.post(CHANNELS + "add/", {"name": "bad", "kind": "webhook", "target": "ftp://x"})
    assert answer.status_code == 200 and "is not an http:// or https:// URL" in answer.content.decode()


def test_an_administrator_adds_a_rule_and_a_bad_one_is_shown_its_error(client, administrator):
    admin = logged_in(client, administrator)
    admin.post(CHANNELS + "add/", {"name": "log", "kind": "console", "target": "", "enabled": "on"})
    log = NotificationChannel.objects.get()
    answer = admin.post(RULES + "add/", {"name": "jobs", "channels": [log.id], "kinds": ["JOB_ERROR"], "repeat_minutes": "10"})
    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert AlertRule.objects.get().kinds == ["JOB_ERROR"]

    answer = admin.post(RULES + "add/", {"name": "esc", "channels": [log.id], "escalate_after_minutes": "5"})
    assert answer.status_code == 200 and "name the channels to escalate to" in answer.content.decode()


def test_an_operator_acknowledges_from_the_admin_with_a_reason(client, operator):
    alert = alert_open(kind="JOB_ERROR", subject="job:1", summary="job 1 is Error")
    page = logged_in(client, operator)
    page.post(ALERTS, {"action": "acknowledge", "_selected_action": [alert.id], "apply": "1", "reason": "on it"})
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by_name, alert.acknowledge_reason) == ("ACKNOWLEDGED", "operator", "on it")


def test_the_demo_tells_its_open_alerts_on_the_console_log(now, caplog, control_queue_file, viewer, client):
    now("2026-03-02T09:00:00Z")
    demo_load()
    assert NotificationChannel.objects.get().kind == "console"
    assert AlertEpisode.objects.filter(state="OPEN").exists()

    with caplog.at_level(logging.WARNING, logger="portal.alerts.console"):
        outbox_publish_all()

    lines = [r.getMessage() for r in caplog.records if r.name == "portal.alerts.console"]
    assert any("opened BATCH_DELAYED batch:acme/PAYMENTS_HOURLY" in line for line in lines), lines
    feed = logged_in(client, viewer).get("/monitor/data/").json()["alerts"]
    assert {"kind": "BATCH_DELAYED", "subject": "batch:acme/PAYMENTS_HOURLY", "state": "OPEN"}.items() <= next(
        a for a in feed if a["kind"] == "BATCH_DELAYED"
    ).items()
