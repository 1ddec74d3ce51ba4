"""The admin is reached through a role (DOMAIN §6), never Django's staff flag; it shows times as the console does."""

from __future__ import annotations

import pytest

from portal.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["operator", "administrator", "viewer"])
def test_a_role_opens_the_admin_without_the_staff_flag(client, who, request):
    user = request.getfixturevalue(who)
    assert not user.is_staff
    answer = client.post("/admin/login/?next=/admin/", {"username": who, "password": f"pw-{who}"}, follow=True)
    assert answer.status_code == 200
    assert answer.redirect_chain[-1][0] == "/admin/"
    assert "Scheduling" in answer.content.decode()


def test_an_operator_works_jobs_and_reads_the_audit_log_in_the_admin(client, operator):
    client.force_login(operator)
    assert client.get("/admin/scheduling/job/").status_code == 200
    assert client.get("/admin/portal/auditentry/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 403  # users and roles are an Administrator's


@pytest.mark.parametrize("who", ["feeder", "nobody"])
def test_a_feeder_or_an_account_without_a_role_is_refused_in_plain_words(client, who, request):
    from tests.conftest import make_user

    user = request.getfixturevalue("feeder") if who == "feeder" else make_user("nobody")
    answer = client.post("/admin/login/", {"username": user.username, "password": f"pw-{user.username}"})
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "may not open the admin: that needs the Viewer, Operator or Administrator role" in page
    client.force_login(user)
    assert client.get("/admin/").status_code == 302  # back to the login page, which says who is logged in
    assert client.get("/admin/scheduling/job/").status_code == 302


def test_the_admin_shows_times_one_way_in_the_portal_time_zone_and_names_it(client, administrator, now, settings):
    settings.PORTAL_TIME_ZONE = "Europe/Berlin"
    now("2026-12-02T01:22:00Z")
    audit_record(actor="cli:test", action="test.action")
    client.force_login(administrator)
    page = client.get("/admin/portal/auditentry/").content.decode()
    assert "2026-12-02 02:22:00" in page  # 02:22 in Berlin, with the year
    assert "a.m." not in page and "Dec." not in page
    assert "times in Europe/Berlin" in page
    assert client.get("/api/v1/audit/").json()["results"][0]["at"] in ("2026-12-02T01:22:00Z", "2026-12-02T01:22:00+00:00")
