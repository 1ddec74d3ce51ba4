"""DOMAIN §4's API conventions, checked on every read endpoint of the URLconf over the demo data.

Every resource has its ``id``; related objects are named by their natural key (never
a bare primary key); times are ISO-8601 in UTC with ``Z``; list endpoints filter by
natural keys. The routes come from the permission matrix, which is itself checked
against the URLconf, so a new endpoint is covered here too.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.management import call_command
from rest_framework import relations, serializers

from tests.portal.test_permission_matrix import MATRIX, api_routes

pytestmark = pytest.mark.django_db

INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
# Answered with one object, not a page of rows: the root, the scheduler switch, the day's forecast (its own test).
ONE_OBJECT = ("/api/v1/", "/api/v1/scheduler/", "/api/v1/forecast/")
LIST_ROUTES = sorted(route for route, methods in MATRIX.items() if "GET" in methods and "{id}" not in route and route.count("/") == 4)


@pytest.fixture
def demo(now, administrator, api_client_for):
    start = now("2026-03-02T09:00:00Z")
    call_command("load_demo", verbosity=0)
    now("2026-03-03T12:00:00Z")
    call_command("heartbeat", "--once", verbosity=0)  # the demo tasks fire: summaries, scan, messages
    assert start
    return api_client_for(administrator)


def instants_not_in_utc(value, where: str = "") -> list[str]:
    """Every ISO-looking string not ending in Z, with where it was found (message payloads aside)."""
    if isinstance(value, dict):
        return [bad for key, item in value.items() if key != "payload" for bad in instants_not_in_utc(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [bad for i, item in enumerate(value) for bad in instants_not_in_utc(item, f"{where}[{i}]")]
    if isinstance(value, str) and INSTANT.match(value) and not value.endswith("Z"):
        return [f"{where}={value}"]
    return []


def test_every_list_has_ids_utc_times_and_a_detail_by_id(demo):
    client = demo
    for route in LIST_ROUTES:
        answer = client.get(route)
        assert answer.status_code == 200, route
        body = answer.json()
        rows = body["results"] if isinstance(body, dict) and "results" in body else body
        if route in ONE_OBJECT:
            continue
        assert rows, f"{route}: the demo data should give it rows"
        for row in rows:
            assert isinstance(row.get("id"), int), f"{route}: a row without its id: {row}"
        assert instants_not_in_utc(rows) == [], route
        detail = route + f"{rows[0]['id']}/"
        if detail.replace(f"{rows[0]['id']}/", "{id}/") in MATRIX:
            one = client.get(detail)
            assert one.status_code == 200 and one.json()["id"] == rows[0]["id"], detail
            assert instants_not_in_utc(one.json()) == [], detail


def test_the_scheduler_switch_has_its_id(demo):
    body = demo.get("/api/v1/scheduler/").json()
    assert body["id"] == 1
    assert set(body) >= {"shut_down", "changed_at", "changed_by", "reason"}


def serializer_fields(serializer: serializers.BaseSerializer, where: str) -> list[tuple[str, object]]:
    found = []
    for name, field in serializer.fields.items():
        found.append((f"{where}.{name}", field))
        child = getattr(field, "child", None)
        if isinstance(field, serializers.BaseSerializer) and hasattr(field, "fields"):
            found += serializer_fields(field, f"{where}.{name}")
        elif isinstance(child, serializers.BaseSerializer) and hasattr(child, "fields"):
            found += serializer_fields(child, f"{where}.{name}")
    return found


def test_no_serializer_names_a_related_object_by_its_primary_key():
    """A relation is a code, a name, a username: never a PrimaryKeyRelatedField."""
    offenders = []
    for route, view in api_routes().items():
        cls = getattr(view, "cls", None)
        for action in (getattr(view, "actions", None) or {}).values():
            serializer_class = getattr(getattr(cls, action, None), "kwargs", {}).get("serializer_class") or getattr(
                cls, "serializer_class", None
            )
            if serializer_class is None:
                continue
            for where, field in serializer_fields(serializer_class(), f"{route} {serializer_class.__name__}"):
                related = field.child_relation if isinstance(field, relations.ManyRelatedField) else field
                if isinstance(related, relations.PrimaryKeyRelatedField):
                    offenders.append(where)
    assert offenders == []


# list route -> (filter, a natural-key value in the demo data, the row field that must match)
NATURAL_KEY_FILTERS = {
    "/api/v1/arrivals/": [("tenant", "acme", "tenant"), ("config", "GL_DAILY", "config")],
    "/api/v1/batch-configs/": [("tenant", "globex", "tenant"), ("name", "GL_DAILY", "name")],
    "/api/v1/batch-windows/": [("config", "GL_DAILY", "config"), ("tenant", "acme", "tenant")],
    "/api/v1/transactions/": [("interface", "PAYMENT_ORIGINATOR", "interface")],
    "/api/v1/summaries/": [("interface", "PAYMENT_ORIGINATOR", "interface"), ("task", "demo-hosted-summary", "task")],
    "/api/v1/calendar-groups/": [("name", "NYSE", "name")],
    "/api/v1/interfaces/": [("code", "REPAIR_SERVICE", "code")],
    "/api/v1/scheduler-tasks/": [("name", "demo-batch-scan", "name")],
    "/api/v1/spools/": [("name", "demo", "name")],
    "/api/v1/jobs/": [("spool", "demo", "spool")],
    "/api/v1/messages/": [("kind", "FTMHostedServiceBeginSummary", "kind")],
    "/api/v1/audit/": [("actor", "load_demo", "actor"), ("action", "workflow.load", "action")],
    "/api/v1/alerts/": [("kind", "BATCH_OPEN", "kind"), ("tenant", "acme", "tenant"), ("config", "GL_DAILY", "config")],
    "/api/v1/notification-channels/": [("name", "console-log", "name")],
    "/api/v1/alert-rules/": [("name", "everything to the console log", "name")],
    "/api/v1/cutoffs/": [("name", "CHAPS customer", "name"), ("interface", "PAYMENTS_GATEWAY", "interface"), ("calendar_group", "TARGET2", "calendar_group")],
}


def test_list_endpoints_filter_by_natural_keys(demo):
    for route, filters in NATURAL_KEY_FILTERS.items():
        everything = demo.get(route, {"page_size": 1000}).json()["results"]
        for name, value, field in filters:
            rows = demo.get(route, {name: value, "page_size": 1000}).json()["results"]
            assert rows, f"{route}?{name}={value} found nothing"
            assert all(row[field] == value for row in rows), f"{route}?{name}={value}"
            if any(row[field] != value for row in everything):
                assert len(rows) < len(everything), f"{route}?{name}={value} did not filter"


def test_scheduler_tasks_filter_by_interface_code_and_calendar_group_name(demo):
    rows = demo.get("/api/v1/scheduler-tasks/", {"interface": "REPAIR_SERVICE"}).json()["results"]
    assert rows and all("REPAIR_SERVICE" in row["interfaces"] for row in rows)


def test_a_time_sent_with_an_offset_is_answered_in_utc(demo, operator, api_client_for):
    job = demo.get("/api/v1/jobs/").json()["results"][0]
    answer = api_client_for(operator).post(
        f"/api/v1/jobs/{job['id']}/schedule/", {"timestamp": "2026-03-04T10:00:00+02:00"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["timestamp"] == "2026-03-04T08:00:00Z"
    assert dt.datetime.fromisoformat(answer.json()["timestamp"].replace("Z", "+00:00")).utcoffset() == dt.timedelta(0)


def test_openapi_schema_generates_without_errors_or_warnings(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn`: a warning exits non-zero (SystemExit)."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = target.read_text()
    for route in MATRIX:
        if route.startswith("/api/v1/") and route != "/api/v1/":
            assert f"  {route}:" in schema, f"{route} is missing from the OpenAPI schema"


def test_the_api_root_lists_every_resource(viewer, api_client_for):
    root = api_client_for(viewer).get("/api/v1/").json()
    listed = {f"/api/v1/{name}/" for name in root}
    assert listed == set(LIST_ROUTES) - {"/api/v1/"}
    assert all(url.startswith("http://testserver/api/v1/") for url in root.values())


def test_no_list_endpoint_queries_once_per_row(demo):
    """An N+1 shows as more queries for a longer page: a page of 2 and a page of 40 must cost the same."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for route in LIST_ROUTES:
        if route in ONE_OBJECT:
            continue
        counts = []
        for size in (2, 40):
            with CaptureQueriesContext(connection) as queries:
                answer = demo.get(route, {"page_size": size})
            assert answer.status_code == 200, route
            counts.append((len(answer.json()["results"]), len(queries)))
        (few, few_queries), (many, many_queries) = counts
        if many > few:
            assert many_queries == few_queries, f"{route}: {few} rows cost {few_queries} queries, {many} rows {many_queries}"
