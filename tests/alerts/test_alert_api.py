"""The alerts' API (DOMAIN §7): episodes newest first, acknowledgement, channels and rules by name, secrets never shown."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.alerts.models import AlertEpisode, NotificationChannel
from portal.alerts.services import alert_open, alert_resolve
from portal.models import AuditEntry, OutboundMessage
from tests.alerts.conftest import publish

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/notification-channels/"
RULES = "/api/v1/alert-rules/"


@pytest.fixture
def admin_api(administrator, api_client_for):
    return api_client_for(administrator)


def test_alerts_are_listed_newest_first_and_filter_by_state_and_kind(now, viewer, api_client_for):
    now("2026-03-02T10:00:00Z")
    first = alert_open(kind="JOB_ERROR", subject="job:1", summary="job 1 is Error", spool="billing")
    alert_open(kind="TASK_ERROR", subject="task:scan", summary="scan is in ERROR")
    alert_open(kind="JOB_ERROR", subject="job:2", summary="job 2 is Error", spool="billing")
    alert_resolve(kind="JOB_ERROR", subject="job:1")
    client = api_client_for(viewer)

    rows = client.get("/api/v1/alerts/").json()["results"]
    assert [r["subject"] for r in rows] == ["job:2", "task:scan", "job:1"]
    assert [r["subject"] for r in client.get("/api/v1/alerts/", {"state": "OPEN", "kind": "JOB_ERROR"}).json()["results"]] == ["job:2"]
    one = client.get(f"/api/v1/alerts/{first.id}/").json()
    assert (one["state"], one["opened_at"], one["resolved_at"], one["spool"]) == ("RESOLVED", "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z", "billing")
    assert client.get("/api/v1/alerts/", {"state": "SHOUTING"}).status_code == 400


def test_acknowledging_needs_a_reason_a_future_until_and_an_open_alert(now, operator, viewer, api_client_for):
    now("2026-03-02T10:00:00Z")
    alert = alert_open(kind="JOB_ERROR", subject="job:1", summary="job 1 is Error")
    client = api_client_for(operator)
    url = f"/api/v1/alerts/{alert.id}/acknowledge/"

    assert api_client_for(viewer).post(url, {"reason": "mine"}, format="json").status_code == 403
    answer = client.post(url, {}, format="json")
    assert answer.status_code == 400 and "reason" in answer.json()
    answer = client.post(url, {"reason": "mine", "until": "2026-03-02T09:00:00Z"}, format="json")
    assert answer.status_code == 400 and "until" in answer.json()

    answer = client.post(url, {"reason": "mine", "until": "2026-03-02T13:00:00+02:00"}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["state"], body["acknowledged_by"], body["acknowledged_until"]) == ("ACKNOWLEDGED", "operator", "2026-03-02T11:00:00Z")
    entry = AuditEntry.objects.get(action="alert.acknowledge")
    assert (entry.reason, entry.before["state"], entry.after["state"]) == ("mine", "OPEN", "ACKNOWLEDGED")

    alert_resolve(kind="JOB_ERROR", subject="job:1")
    answer = client.post(url, {"reason": "too late"}, format="json")
    assert answer.status_code == 409 and answer.json()["state"] == "RESOLVED"


def test_a_channels_secret_is_never_returned_and_secrets_in_targets_are_masked(admin_api, viewer, api_client_for):
    answer = admin_api.post(
        CHANNELS, {"name": "hook", "kind": "webhook", "target": "https://bot:pa55@hooks.example.com/services/T0/B0/XYZ?token=abc", "secret": "s3"}, format="json"
    )
    assert answer.status_code == 201, answer.content
    created = answer.json()
    assert "secret" not in created and created["has_secret"] is True
    assert created["target"] == "https://bot:***@hooks.example.com/services/***?***"
    slack = admin_api.post(CHANNELS, {"name": "slack", "kind": "apprise", "target": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"}, format="json")
    assert slack.status_code == 201, slack.content
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in slack.json()["target"]

    listing = api_client_for(viewer).get(CHANNELS).content.decode()
    for secret in ("s3", "pa55", "abc", "TIiajkdnlazkcOXrIdevi7FQ", "XYZ"):
        assert f'"{secret}' not in listing and f"{secret}\"" not in listing and f"/{secret}" not in listing
    audit = " ".join(str(e.after) for e in AuditEntry.objects.filter(action__startswith="notification_channel"))
    assert "pa55" not in audit and "TIiajkdnlazkcOXrIdevi7FQ" not in audit and "s3'" not in audit


def test_sending_the_masked_target_back_keeps_the_real_one_and_a_missing_secret_keeps_the_secret(admin_api):
    target = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    made = admin_api.post(CHANNELS, {"name": "slack", "kind": "apprise", "target": target, "secret": "x"}, format="json").json()

    answer = admin_api.put(f"{CHANNELS}{made['id']}/", {**made, "enabled": False}, format="json")

    assert answer.status_code == 200, answer.content
    channel = NotificationChannel.objects.get()
    assert (channel.target, channel.secret, channel.enabled) == (target, "x", False)
    admin_api.patch(f"{CHANNELS}{made['id']}/", {"secret": ""}, format="json")
    assert NotificationChannel.objects.get().secret == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "h", "kind": "webhook", "target": "ftp://files.example.com/in"}, "target"),
        ({"name": "h", "kind": "webhook", "target": "hooks.example.com/portal"}, "target"),
        ({"name": "m", "kind": "email", "target": "ops@example.com, not an address"}, "target"),
        ({"name": "m", "kind": "email", "target": ""}, "target"),
        ({"name": "a", "kind": "apprise", "target": "nosuchservice://token"}, "target"),
        ({"name": "x", "kind": "pager", "target": "anything"}, "kind"),
        ({"name": "", "kind": "console", "target": ""}, "name"),
    ],
)
def test_a_bad_channel_is_refused_naming_the_field(admin_api, body, field):
    answer = admin_api.post(CHANNELS, body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()
    assert not NotificationChannel.objects.exists()


def test_a_second_channel_with_the_same_name_is_refused_naming_it(admin_api):
    assert admin_api.post(CHANNELS, {"name": "log", "kind": "console"}, format="json").status_code == 201
    answer = admin_api.post(CHANNELS, {"name": "log", "kind": "console"}, format="json")
    assert answer.status_code == 400 and "name" in answer.json()


@pytest.fixture
def two_channels(admin_api):
    for name in ("mail", "pager"):
        admin_api.post(CHANNELS, {"name": name, "kind": "email", "target": f"{name}@example.com"}, format="json")


def test_rules_name_their_channels_in_both_directions(admin_api, two_channels):
    answer = admin_api.post(
        RULES,
        {"name": "jobs", "channels": ["mail"], "kinds": ["JOB_ERROR", "JOB_ZOMBIE"], "spool": "billing",
         "repeat_minutes": 10, "escalate_after_minutes": 30, "escalate_to": ["pager"]},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json() | {"id": 0} == {
        "id": 0, "name": "jobs", "channels": ["mail"], "kinds": ["JOB_ERROR", "JOB_ZOMBIE"], "tenant": "", "config": "",
        "spool": "billing", "interface": "", "repeat_minutes": 10, "escalate_after_minutes": 30, "escalate_to": ["pager"],
    }
    assert [r["name"] for r in admin_api.get(RULES, {"channel": "pager"}).json()["results"]] == []
    assert [r["name"] for r in admin_api.get(RULES, {"channel": "mail"}).json()["results"]] == ["jobs"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "r", "channels": []}, "channels"),
        ({"name": "r", "channels": ["nosuch"]}, "channels"),
        ({"name": "r", "channels": ["mail"], "kinds": ["JOB_EXPLODED"]}, "kinds"),
        ({"name": "r", "channels": ["mail"], "repeat_minutes": 0}, "repeat_minutes"),
        ({"name": "r", "channels": ["mail"], "escalate_after_minutes": 30}, "escalate_to"),
        ({"name": "r", "channels": ["mail"], "escalate_to": ["pager"]}, "escalate_after_minutes"),
        ({"name": "", "channels": ["mail"]}, "name"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(admin_api, two_channels, body, field):
    answer = admin_api.post(RULES, body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()


def test_the_test_action_sends_a_test_event_through_the_outbox(now, admin_api, receiver, operator, api_client_for, control_queue_file):
    now("2026-03-02T10:00:00Z")
    made = admin_api.post(CHANNELS, {"name": "hook", "kind": "webhook", "target": receiver.url + "/in"}, format="json").json()
    url = f"{CHANNELS}{made['id']}/test/"
    assert api_client_for(operator).post(url).status_code == 403

    answer = admin_api.post(url)
    assert answer.status_code == 202
    publish("2026-03-02T10:00:00Z")

    [body] = receiver.posts()
    assert (body["event"], body["kind"], body["alert_id"], body["subject"]) == ("test", "TEST", None, "channel:hook")
    assert OutboundMessage.objects.get(dedupe_key=answer.json()["queued"]).status == "SENT"


def test_a_new_rule_reaches_episodes_already_open(now, admin_api, two_channels, control_queue_file):
    from portal.alerts.services import alerts_review

    start = now("2026-03-02T10:00:00Z")
    alert_open(kind="JOB_ERROR", subject="job:7", summary="job 7 is Error")
    admin_api.post(RULES, {"name": "late", "channels": ["mail"], "repeat_minutes": 5}, format="json")
    alerts_review(now=start + dt.timedelta(minutes=5))

    sent = OutboundMessage.objects.filter(kind="NOTIFICATION").values_list("payload__event", flat=True)
    assert list(sent) == ["repeated"]  # told at the next review, not lost
    assert AlertEpisode.objects.get().review_at is not None
