"""The API exactly as published (issue 14): schemathesis over every operation of the OpenAPI schema.

Valid and invalid requests are generated from the schema itself (its examples, its boundaries,
then fuzzing) and sent to the WSGI application in-process, as an Administrator (who may call
every operation), on the demo data. Every answer must be in the schema: no server error, no body
outside it, no status code it does not list, and no invalid request accepted. The seed is fixed
and the examples bounded, so a run takes minutes and finds the same things twice.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from django.core.management import call_command
from schemathesis.engine import events
from werkzeug.test import Client as WsgiClient

from tests.conftest import make_user

# Schemathesis' workers run in threads of their own, with connections of their own: the demo data
# must be committed for them to see it.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]
EXAMPLES_PER_OPERATION = 6
SEED = 14
USERNAME, PASSWORD = "schemathesis", "pw-schemathesis-admin"
# The client's own address: schemathesis' wrong passwords on /token/ lock its address out (DOMAIN §4), not this client.
CLIENT_ADDRESS = {"REMOTE_ADDR": "192.0.2.200"}


class ClientTokens:
    """The tokens a client keeps: one login, then a refresh (with the rotated refresh token) when the access one ages."""

    def __init__(self, app) -> None:
        self.client = WsgiClient(app)
        self.refresh: str | None = None

    def get(self, case, context) -> str:
        if self.refresh:
            answer = self.client.post("/api/v1/token/refresh/", json={"refresh": self.refresh}, environ_base=CLIENT_ADDRESS)
            if answer.status_code == 200:
                self.refresh = answer.json.get("refresh", self.refresh)  # rotated: the old one is spent
                return answer.json["access"]
        answer = self.client.post("/api/v1/token/", json={"username": USERNAME, "password": PASSWORD}, environ_base=CLIENT_ADDRESS)
        assert answer.status_code == 200, answer.text
        self.refresh = answer.json["refresh"]
        return answer.json["access"]

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def run_schemathesis(app) -> tuple[int, Counter, Counter, list[str]]:
    """Every operation through schemathesis' engine: how many the schema has, cases per operation, failures per check, what failed."""
    tokens = ClientTokens(app)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "generation": {"max-examples": EXAMPLES_PER_OPERATION},
            "phases": {"stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", app, config=config, headers={"Authorization": f"Bearer {tokens.get(None, None)}"}
    )
    # An access token lives JWT_ACCESS_SECONDS (300 s by default): refreshed well before, as a client does.
    schema.auth(refresh_interval=120)(type("PortalTokens", (), {"get": tokens.get, "set": tokens.set}))

    operations = sum(1 for _ in schema.get_all_operations())
    cases: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    examples: list[str] = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.FatalError | events.NonFatalError):
            examples.append(f"error: {event.info.title if hasattr(event, 'info') else event}: {event.value if hasattr(event, 'value') else ''}")
        recorder = getattr(event, "recorder", None)
        if not isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished) or recorder is None:
            continue
        for case_id, node in recorder.cases.items():
            cases[node.value.operation.label] += 1
            for check in recorder.checks.get(case_id, []):
                if check.failure_info is None:
                    continue
                failures[check.name] += 1
                interaction = recorder.interactions.get(case_id)
                status = interaction.response.status_code if interaction and interaction.response else None
                examples.append(
                    f"{check.name}: {node.value.method.upper()} {node.value.path} query={node.value.query} "
                    f"body={str(node.value.body)[:200]} -> {status}: {check.failure_info.failure.title}: "
                    f"{check.failure_info.failure.message[:400]}"
                )
    return operations, cases, failures, examples


def test_every_operation_answers_as_published(monkeypatch):
    from django.db import connections

    from portal.wsgi import application

    # Each worker thread's connection closes with its request, so none outlives the test's database.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)

    call_command("load_demo", verbosity=0)
    user = make_user(USERNAME, "Administrator")
    user.set_password(PASSWORD)
    user.save()

    operations, cases, failures, examples = run_schemathesis(application)

    print(f"\nschemathesis: {sum(cases.values())} cases over {len(cases)} of {operations} operations; failures by check: {dict(failures)}")
    for line in examples[:200]:
        print("  " + line)
    assert operations >= 69 and len(cases) == operations, sorted(cases)  # every operation was called
    assert failures == Counter(), examples[:20]
    assert not [line for line in examples if line.startswith("error:")]
