"""API tokens (issue 14): lifetimes from the environment, refresh tokens rotated and spent, and every
token of an account dead once its password changes or it is deactivated."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.django_db


def tokens(username: str = "viewer") -> dict:
    answer = APIClient().post("/api/v1/token/", {"username": username, "password": f"pw-{username}"}, format="json")
    assert answer.status_code == 200
    return answer.json()


def refresh(token: str):
    return APIClient().post("/api/v1/token/refresh/", {"refresh": token}, format="json")


def reads_with(access: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/v1/messages/").status_code


def test_the_access_token_lives_300_seconds_by_default(viewer):
    token = AccessToken(tokens()["access"])
    assert token["exp"] - token["iat"] == 300 == settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()


def test_a_refresh_token_is_spent_by_its_refresh(viewer):
    first = tokens()["refresh"]
    answer = refresh(first)
    assert answer.status_code == 200 and set(answer.json()) == {"access", "refresh"}
    assert refresh(first).status_code == 401  # blacklisted: a stolen copy is good for nothing after the owner's refresh
    assert refresh(answer.json()["refresh"]).status_code == 200


def test_a_refresh_token_issued_before_a_password_change_answers_401(viewer):
    old = tokens()
    viewer.set_password("a-new-password-42")
    viewer.save()
    assert refresh(old["refresh"]).status_code == 401
    assert reads_with(old["access"]) == 401
    new = APIClient().post("/api/v1/token/", {"username": "viewer", "password": "a-new-password-42"}, format="json").json()
    assert refresh(new["refresh"]).status_code == 200 and reads_with(new["access"]) == 200


def test_every_token_of_a_deactivated_account_is_dead(viewer):
    old = tokens()
    viewer.is_active = False
    viewer.save()
    assert refresh(old["refresh"]).status_code == 401
    assert reads_with(old["access"]) == 401
