from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from portal.services import outbox_enqueue
from tests.portal.payloads import control_message

pytestmark = pytest.mark.django_db


def test_unauthenticated_api_call_gets_401():
    answer = APIClient().get("/api/v1/messages/")
    assert answer.status_code == 401


def test_token_from_the_token_endpoint_works(viewer):
    client = APIClient()
    tokens = client.post("/api/v1/token/", {"username": "viewer", "password": "pw-viewer"}, format="json").json()
    assert set(tokens) == {"access", "refresh"}

    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.get("/api/v1/messages/").status_code == 200

    refreshed = APIClient().post("/api/v1/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()


def test_wrong_password_gets_no_token(viewer):
    answer = APIClient().post("/api/v1/token/", {"username": "viewer", "password": "nope"}, format="json")
    assert answer.status_code == 401


def test_feeder_may_not_read_the_outbox(feeder, api_client_for):
    assert api_client_for(feeder).get("/api/v1/messages/").status_code == 403


def test_messages_filter_by_status_and_kind(viewer, api_client_for):
    outbox_enqueue(kind="control_message", dedupe_key="good", payload=control_message())
    outbox_enqueue(kind="control_message", dedupe_key="bad", payload={"uuid": "x"})
    client = api_client_for(viewer)

    invalid = client.get("/api/v1/messages/", {"status": "INVALID"}).json()["results"]
    pending = client.get("/api/v1/messages/", {"status": "PENDING", "kind": "control_message"}).json()["results"]

    assert [m["dedupe_key"] for m in invalid] == ["bad"]
    assert [m["dedupe_key"] for m in pending] == ["good"]
    assert pending[0]["created_at"].endswith("Z")
    assert {"id", "uuid", "kind", "payload", "status", "attempts", "next_attempt_at"} <= set(pending[0])


def test_openapi_schema_and_docs_are_served_after_login(viewer, client):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
    client.force_login(viewer)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
