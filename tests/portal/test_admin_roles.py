"""The portal's own admin pages follow the roles as the API does; "publish again" is an Operator's action."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from portal.models import AuditEntry, MessageStatus, OutboundMessage
from portal.services import outbox_enqueue, outbox_retry
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db

OUTBOX = "/admin/portal/outboundmessage/"
AUDIT = "/admin/portal/auditentry/"


@pytest.fixture
def failed_message():
    message = outbox_enqueue(kind="control_message", dedupe_key="refused", payload=control_message())
    OutboundMessage.objects.filter(id=message.id).update(status=MessageStatus.FAILED, last_error="refused")
    return message


def staff_client(client, user):
    """The staff flag is set, and changes nothing: the role decides (test_admin_by_role)."""
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


def test_readers_see_the_outbox_and_the_audit_log_a_feeder_does_not(client, viewer, feeder, failed_message):
    viewer_client = staff_client(client, viewer)
    assert viewer_client.get(OUTBOX).status_code == 200
    assert viewer_client.get(AUDIT).status_code == 200
    assert "publish_again" not in viewer_client.get(OUTBOX).content.decode()
    client.logout()
    feeder_client = staff_client(client, feeder)
    assert feeder_client.get(OUTBOX).status_code == 302  # to the login page: a Feeder may not enter the admin
    assert feeder_client.get(AUDIT).status_code == 302


def test_an_operator_publishes_again_from_the_admin_and_it_is_audited(client, operator, failed_message):
    operator_client = staff_client(client, operator)
    assert "publish_again" in operator_client.get(OUTBOX).content.decode()
    operator_client.post(OUTBOX, {"action": "publish_again", "_selected_action": [failed_message.id]})
    failed_message.refresh_from_db()
    assert failed_message.status == MessageStatus.PENDING
    entry = AuditEntry.objects.get(action="outbox.publish_again")
    assert (entry.actor_name, entry.before, entry.after) == ("operator", {"status": "FAILED"}, {"status": "PENDING"})


def test_the_service_refuses_a_viewer_whatever_the_surface(viewer, failed_message):
    with pytest.raises(PermissionDenied):
        outbox_retry(messages=OutboundMessage.objects.all(), actor=viewer)
    failed_message.refresh_from_db()
    assert failed_message.status == MessageStatus.FAILED


def test_giving_a_role_in_the_admin_is_audited_with_before_and_after(client, administrator, viewer, now):
    from django.contrib.auth.models import Group

    now("2026-03-02T10:00:00Z")
    admin_client = staff_client(client, administrator)
    operator_role = Group.objects.get(name="Operator")
    answer = admin_client.post(
        f"/admin/auth/user/{viewer.id}/change/",
        {
            "username": "viewer", "is_active": "on", "is_staff": "on", "is_superuser": "on",
            "groups": [viewer.groups.get().id, operator_role.id],
            "date_joined_0": "2026-03-01", "date_joined_1": "09:00:00",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]

    entry = AuditEntry.objects.get(action="user.update")
    assert entry.actor_name == "administrator" and entry.object_id == str(viewer.id)
    assert entry.before["roles"] == ["Viewer"] and entry.after["roles"] == ["Operator", "Viewer"]
    assert entry.before["is_staff"] is False and entry.after["is_staff"] is True
    assert entry.after["is_superuser"] is False  # only a superuser makes superusers
    assert entry.at.isoformat() == "2026-03-02T10:00:00+00:00"


def test_removing_a_user_in_the_admin_is_audited(client, administrator, operator):
    admin_client = staff_client(client, administrator)
    admin_client.post(f"/admin/auth/user/{operator.id}/delete/", {"post": "yes"})
    entry = AuditEntry.objects.get(action="user.delete")
    assert entry.before["roles"] == ["Operator"] and entry.after is None
