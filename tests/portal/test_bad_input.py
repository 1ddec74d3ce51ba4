"""Bad input on every mutating API route answers 4xx, never 500, and writes nothing (DOMAIN §4, issue 2).

The routes come from the permission matrix (itself checked against the URLconf); each is called
as an Administrator on real demo objects with bodies of the wrong shape and type.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from portal.models import AuditEntry, OutboundMessage
from tests.portal.test_permission_matrix import MATRIX

pytestmark = pytest.mark.django_db

BAD_BODIES = [
    "not json at all",
    "[]",
    '"a string"',
    "null",
    "42",
    '{"reason": 5, "timestamp": "yesterday", "comment": null, "enabled": "maybe", "state": "x", "spool": []}',
    '{"name": "", "interval_seconds": -1, "sources": "gl_lines", "weekend_days": [9], "interfaces": ["NOPE"]}',
    '[{"tenant": 1}, "x", null]',
]


@pytest.fixture
def ids(now, administrator, api_client_for):
    now("2026-03-02T09:00:00Z")
    call_command("load_demo", verbosity=0)
    client = api_client_for(administrator)

    def first(route: str) -> int:
        rows = client.get(route).json()["results"]
        return rows[0]["id"] if rows else 0

    return client, {
        route: first(route.split("{id}")[0]) for route in MATRIX if "{id}" in route and route.startswith("/api/v1/")
    }


def test_no_bad_body_answers_500_or_writes_anything(ids):
    client, object_ids = ids
    for route, methods in MATRIX.items():
        if not route.startswith("/api/v1/"):
            continue
        url = route.replace("{id}", str(object_ids.get(route, 0)))
        for method in methods:
            if method in ("GET", "DELETE"):
                continue
            for body in BAD_BODIES:
                audits, messages = AuditEntry.objects.count(), OutboundMessage.objects.count()
                answer = client.generic(method, url, body, content_type="application/json")
                where = f"{method} {route} with {body}"
                assert answer.status_code < 500, where
                if answer.status_code >= 400:
                    assert (AuditEntry.objects.count(), OutboundMessage.objects.count()) == (audits, messages), where


BAD_QUERIES = [
    {"page_size": "lots"},
    {"cursor": "not-a-cursor"},
    {"since": "yesterday", "until": "2026-13-45T99:00:00Z"},
    {"status": "Bogus", "state": "x", "generation": "x", "window": "x", "held": "perhaps", "enabled": "perhaps"},
    {"interface": "NO_SUCH_INTERFACE", "alert_state": "LOUD", "exception": "NOPE", "event": "NOPE"},
    {"before": "x", "after": "-1", "spool": "\x00"},
]


def test_no_bad_query_answers_500(ids):
    client, _ = ids
    for route, methods in MATRIX.items():
        if "GET" not in methods or "{id}" in route:
            continue
        for query in BAD_QUERIES:
            answer = client.get(route, query)
            assert answer.status_code < 500, f"GET {route} with {query}: {answer.status_code}"
