"""DOMAIN §4: after 10 wrong passwords within a minute for one account or from one address, every
further login and token request answers 429 until the minute has passed: the console's login, the
admin's, the API's token and refresh routes, across every web process (the count is in the database)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from rest_framework.test import APIClient

from portal import clock
from portal.models import LoginFailures

pytestmark = pytest.mark.django_db

LOGINS = {
    "/api/v1/token/": "json",
    "/monitor/login/": "form",
    "/admin/login/": "form",
}


def login(path: str, username: str, password: str, address: str = "192.0.2.10"):
    if LOGINS[path] == "json":
        return APIClient().post(path, {"username": username, "password": password}, format="json", REMOTE_ADDR=address)
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def succeeded(path: str, answer) -> bool:
    return answer.status_code == 200 if LOGINS[path] == "json" else answer.status_code == 302


@pytest.mark.parametrize("path", sorted(LOGINS))
def test_the_eleventh_wrong_password_within_a_minute_answers_429_until_the_minute_has_passed(path, operator, now):
    operator.is_staff = True  # Django's admin login still asks for it
    operator.save()
    start = now("2026-03-02T10:00:00Z")
    for _ in range(10):
        answer = login(path, "operator", "wrong")
        assert answer.status_code in (200, 401) and not succeeded(path, answer)
    clock.set_now(start + dt.timedelta(seconds=50))
    locked = login(path, "operator", "pw-operator")  # the right password is refused too while locked
    assert locked.status_code == 429 and int(locked["Retry-After"]) <= 11

    clock.set_now(start + dt.timedelta(seconds=61))
    assert succeeded(path, login(path, "operator", "pw-operator"))


def test_one_address_trying_many_accounts_is_locked_out_of_every_login(operator, now):
    now("2026-03-02T10:00:00Z")
    for index in range(10):
        login("/admin/login/", f"guess{index}", "wrong", address="198.51.100.7")
    for path in LOGINS:
        assert login(path, "operator", "pw-operator", address="198.51.100.7").status_code == 429, path
    assert succeeded("/api/v1/token/", login("/api/v1/token/", "operator", "pw-operator", address="198.51.100.8"))


def test_one_account_tried_from_many_addresses_is_locked_everywhere(operator, now):
    now("2026-03-02T10:00:00Z")
    for index in range(10):
        login("/monitor/login/", "Operator", "wrong", address=f"203.0.113.{index}")
    assert login("/api/v1/token/", "operator", "pw-operator", address="203.0.113.99").status_code == 429


def test_the_refresh_route_is_locked_for_the_address_too(operator, now):
    now("2026-03-02T10:00:00Z")
    refresh = APIClient().post("/api/v1/token/", {"username": "operator", "password": "pw-operator"}, format="json").json()["refresh"]
    for _ in range(10):
        login("/api/v1/token/", "operator", "wrong", address="192.0.2.44")
    answer = APIClient().post("/api/v1/token/refresh/", {"refresh": refresh}, format="json", REMOTE_ADDR="192.0.2.44")
    assert answer.status_code == 429 and "wrong passwords" in answer.json()["detail"]


def test_nine_wrong_passwords_leave_the_login_open_and_old_windows_are_forgotten(operator, now):
    start = now("2026-03-02T10:00:00Z")
    for _ in range(9):
        login("/api/v1/token/", "operator", "wrong")
    assert succeeded("/api/v1/token/", login("/api/v1/token/", "operator", "pw-operator"))
    clock.set_now(start + dt.timedelta(hours=2))
    login("/api/v1/token/", "someone", "wrong", address="192.0.2.99")
    assert set(LoginFailures.objects.values_list("key", flat=True)) == {"account:someone", "address:192.0.2.99"}
