"""The batch monitor's alerts to people (DOMAIN §7): BATCH_OPEN, BATCH_DELAYED (and BATCH_AT_RISK) episodes.

A config's episode follows its alert state: a new state ends the old episode and
opens one of the new kind; NONE (recovered, or the config deactivated) ends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitoring.batches.models import AlertState, BatchConfig
from portal.alerts.services import alert_open, alert_resolve
from portal.services import PendingMessage

if TYPE_CHECKING:
    from monitoring.batches.scan import Decision


def batch_alert_subject(config: BatchConfig) -> str:
    return f"batch:{config.tenant}/{config.name}"


def batch_alert_follow(*, config: BatchConfig, before: str, after: str, summary: str = "") -> None:
    subject = batch_alert_subject(config)
    if before != after and before != AlertState.NONE:
        alert_resolve(kind=f"BATCH_{before}", subject=subject)
    if after != AlertState.NONE:
        interface = config.interface.code if config.interface_id else ""
        alert_open(kind=f"BATCH_{after}", subject=subject, summary=summary, tenant=config.tenant, config=config.name, interface=interface)


def scan_alerts_follow(*, decisions: list[Decision], before: dict[int, str], messages: list[PendingMessage]) -> None:
    """After a scan chunk: each config whose state changed, or that was told again, brings its episode along.

    The episode's summary is the sentence of the control message the change sent.
    """
    told = {d.alert.config_id: m.payload["eventMessage"] for d, m in zip([d for d in decisions if d.state], messages, strict=True)}
    for decision in decisions:
        config, after = decision.alert.config, decision.alert.state
        if before[config.id] != after or config.id in told:
            batch_alert_follow(config=config, before=before[config.id], after=after, summary=told.get(config.id, ""))
