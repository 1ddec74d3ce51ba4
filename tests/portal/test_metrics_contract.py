"""/metrics as issue 7 names it: exact names and label sets, both paths, allowed addresses; /healthz fields."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from portal.lib.env import EnvError, env_networks
from portal.publisher import outbox_publish_all
from scheduling.workflows.dispatcher import jobs_dispatch

pytestmark = pytest.mark.django_db

# name as exposed -> (type, label names), exactly as issue 7 lists them
CONTRACT = {
    "portal_jobs": ("gauge", {"spool", "status"}),
    "portal_jobs_running": ("gauge", {"spool", "step"}),
    "portal_batches": ("gauge", {"state"}),
    "portal_scheduler_tasks": ("gauge", {"state"}),
    "portal_heartbeat_last_timestamp_seconds": ("gauge", set()),
    "portal_outbox_messages": ("gauge", {"status"}),
    "portal_outbox_oldest_pending_age_seconds": ("gauge", set()),
    "portal_messages_published_total": ("counter", {"kind"}),
    "portal_transactions_value": ("gauge", {"interface", "status", "currency"}),
    "portal_transactions": ("gauge", {"interface", "status"}),
    # what alert rules need (DOMAIN §7, issue 13)
    "portal_batch_alerting": ("gauge", {"tenant", "config", "state"}),
    "portal_job_step_duration_seconds_bucket": ("histogram", {"spool", "le"}),
    "portal_job_step_duration_seconds_sum": ("histogram", {"spool"}),
    "portal_job_step_duration_seconds_count": ("histogram", {"spool"}),
    "portal_job_step_failures_total": ("counter", {"spool"}),
    "portal_spool_last_ok_timestamp_seconds": ("gauge", {"spool"}),
    "portal_dispatcher_last_seen_timestamp_seconds": ("gauge", set()),
    "portal_scheduler_shut_down": ("gauge", set()),
    "portal_alerts_open": ("gauge", {"kind"}),
    # cut-offs (DOMAIN §8, issue 15)
    "portal_cutoff_seconds_left": ("gauge", {"cutoff"}),
    "portal_cutoff_pending": ("gauge", {"cutoff", "currency"}),
    "portal_cutoff_pending_value": ("gauge", {"cutoff", "currency"}),
}


def scrape(client, path: str = "/metrics/", address: str = "127.0.0.1") -> dict[str, list]:
    answer = client.get(path, REMOTE_ADDR=address)
    assert answer.status_code == 200, answer.status_code
    families = {}
    for family in text_string_to_metric_families(answer.content.decode()):
        for sample in family.samples:
            if sample.name.startswith("portal_"):
                families.setdefault(sample.name, []).append(sample)
        families.setdefault(f"# TYPE {family.name}", family.type)
    return families


@pytest.fixture
def busy_portal(now, control_queue_file):
    now("2026-03-02T09:00:00Z")
    call_command("load_demo", verbosity=0)
    now("2026-03-03T12:00:00Z")
    call_command("heartbeat", "--once", verbosity=0)
    jobs_dispatch()  # the demo job's first attempt runs (in-process): a step duration to show
    outbox_publish_all()


def test_every_metric_has_exactly_the_names_and_labels_of_the_issue(client, busy_portal):
    families = scrape(client)
    exposed = {name for name in families if not name.startswith("#")}
    assert exposed == set(CONTRACT), "no metric more, none less, none renamed"
    for name, (kind, labels) in CONTRACT.items():
        samples = families[name]
        assert samples, f"{name} has no sample"
        assert all(set(sample.labels) == labels for sample in samples), name
        family_name = name.removesuffix("_total") if kind == "counter" else name
        if kind == "histogram":
            family_name = name.rsplit("_", 1)[0]
        assert families[f"# TYPE {family_name}"] == kind, name
    assert {s.labels["state"] for s in families["portal_batches"]} == {"at_risk", "open", "delayed"}
    assert {s.labels["status"] for s in families["portal_jobs"]} == {"Waiting", "Running", "OK", "Error", "Pause", "Disabled", "Zombie"}


def test_idle_steps_and_unsent_kinds_are_series_at_zero(client, busy_portal):
    families = scrape(client)
    running = {s.labels["step"]: s.value for s in families["portal_jobs_running"]}
    assert running and set(running.values()) == {0}  # every step of the demo workflow, none running
    published = {s.labels["kind"]: s.value for s in families["portal_messages_published_total"]}
    assert published["HEARTBEAT_GAP"] == 0  # a kind the portal has not sent yet
    assert published["FTMHostedServiceBeginSummary"] > 0


@pytest.mark.parametrize("path", ["/metrics", "/metrics/"])
@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_both_paths_answer_loopback_without_login(client, path, address):
    assert client.get(path, REMOTE_ADDR=address).status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/metrics/"])
def test_other_addresses_are_refused_even_logged_in(client, path, administrator, settings):
    client.force_login(administrator)
    assert client.get(path, REMOTE_ADDR="192.0.2.7").status_code == 403
    assert client.get(path, REMOTE_ADDR="not-an-address").status_code == 403
    settings.METRICS_ALLOWED_IPS = ["192.0.2.0/24"]
    assert client.get(path, REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get(path, REMOTE_ADDR="127.0.0.1").status_code == 403


def test_a_bad_allowed_address_stops_start_up_naming_the_variable(monkeypatch):
    monkeypatch.setenv("METRICS_ALLOWED_IPS", "127.0.0.1, prometheus.local")
    with pytest.raises(EnvError, match="METRICS_ALLOWED_IPS"):
        env_networks("METRICS_ALLOWED_IPS")
    monkeypatch.setenv("METRICS_ALLOWED_IPS", "10.0.0.0/8,::1")
    assert env_networks("METRICS_ALLOWED_IPS") == ["10.0.0.0/8", "::1"]


def test_healthz_fields_and_a_database_that_cannot_be_reached(client, monkeypatch):
    body = client.get("/healthz").json()
    assert set(body) >= {"database", "last_heartbeat_at", "outbox_pending", "outbox_oldest_pending_age_seconds"}
    assert client.get("/healthz/").status_code == 200

    monkeypatch.setattr("portal.selectors.database_reachable", lambda: False)
    answer = client.get("/healthz")
    assert answer.status_code == 503
    down = answer.json()
    assert down["database"] is False and down["status"] == "unhealthy"
    assert down["outbox_pending"] is None  # unknown, not zero


def test_probes_and_scrapers_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/healthz", "/healthz/", "/metrics", "/metrics/"):
        assert client.get(path, REMOTE_ADDR="127.0.0.1").status_code == 200, path
    assert client.get("/api/v1/").status_code == 301  # everything else goes to HTTPS
