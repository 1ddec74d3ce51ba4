"""A reload of every spool with one poison file (DOMAIN §5): a 400 or a CLI error naming file, section, key and value, audited, never a 500, nothing half-written."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from portal import roles
from portal.models import AuditEntry
from scheduling.workflows import services
from scheduling.workflows.models import Spool, WorkflowVersion
from scheduling.workflows.services import workflows_reload

pytestmark = pytest.mark.django_db

GOOD = "[1]\ntext=Import\ncommand=true\nnext=2\n[2]\ntext=Export\ncommand=true\n"
# A bare key followed by an indented line: configparser crashed on it (AttributeError, a 500, no audit row).
POISON = "[1]\ncommand=true\nnext\n  2\n[2]\ncommand=true\n"


@pytest.fixture
def spools(load_spool, write_workflow):
    billing, payroll = load_spool(GOOD, name="billing"), load_spool(GOOD, name="payroll")
    write_workflow(GOOD.replace("Import", "Fetch"), "billing.ini")
    poison = write_workflow(POISON, "payroll.ini")
    return billing, payroll, poison


def test_the_api_answers_400_naming_file_section_key_and_line_and_audits_the_reload(spools, api_client_for, administrator):
    _, _, poison = spools
    answer = api_client_for(administrator).post("/api/v1/scheduler/reload/", {"reason": "monthly"}, format="json")

    assert answer.status_code == 400
    body = answer.json()
    assert [(r["spool"], r["version"], r["changed"]) for r in body["loaded"]] == [("billing", 2, True)]
    [refused] = body["refused"]
    assert refused["spool"] == "payroll"
    assert poison in refused["detail"] and "line 4: [1] next = '2'" in refused["detail"] and "has no value" in refused["detail"]
    entry = AuditEntry.objects.get(action="workflows.reload")
    assert (entry.reason, entry.after["changed"], list(entry.after["refused"])) == ("monthly", ["billing"], ["payroll"])
    assert Spool.objects.get(name="payroll").workflow.number == 1


def test_the_api_reload_of_the_one_poisoned_spool_answers_400(spools, api_client_for, administrator):
    _, payroll, poison = spools
    answer = api_client_for(administrator).post(f"/api/v1/spools/{payroll.id}/reload/", {}, format="json")
    assert answer.status_code == 400 and "line 4: [1] next = '2'" in answer.json()["workflow_file"][0]
    assert AuditEntry.objects.filter(action="workflows.reload", object_id=str(payroll.id)).exists()


def test_the_cli_reload_exits_non_zero_naming_the_file_and_still_loads_the_good_one(spools):
    _, _, poison = spools
    with pytest.raises(CommandError) as caught:
        call_command("jobs", "reload")
    assert f"workflow file {poison} refused" in str(caught.value) and "[1] next = '2'" in str(caught.value)
    assert Spool.objects.get(name="billing").workflow.number == 2
    assert AuditEntry.objects.filter(action="workflows.reload").count() == 1


def test_the_admin_action_reports_the_refusal(spools, client):
    admin = User.objects.create_user(username="ada", password="pw", is_staff=True)
    admin.groups.add(Group.objects.get(name=roles.ADMINISTRATOR))
    client.force_login(admin)
    ids = list(Spool.objects.values_list("id", flat=True))
    answer = client.post("/admin/scheduling/spool/", {"action": "reload_workflows", "_selected_action": ids}, follow=True)
    assert answer.status_code == 200
    assert "line 4: [1] next = &#x27;2&#x27;" in answer.content.decode()
    assert AuditEntry.objects.filter(action="workflows.reload").count() == 1


def test_a_failure_while_writing_leaves_every_spool_as_it_was(spools, monkeypatch, write_workflow):
    write_workflow(GOOD.replace("Export", "Send"), "payroll.ini")  # both files good and changed now

    real_audit = services.audit_record

    def broken_audit(**kwargs):  # the reload's own row, written last, fails after both versions
        if kwargs["action"] == "workflows.reload":
            raise RuntimeError("the audit table is gone")
        return real_audit(**kwargs)

    monkeypatch.setattr(services, "audit_record", broken_audit)
    with pytest.raises(RuntimeError):
        workflows_reload(actor="cli:test")

    assert WorkflowVersion.objects.count() == 2 and not AuditEntry.objects.filter(action="workflow.load", after__version=2).exists()
    assert {spool.name: spool.workflow.number for spool in Spool.objects.select_related("workflow")} == {"billing": 1, "payroll": 1}
