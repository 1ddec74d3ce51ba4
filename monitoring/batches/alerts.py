"""The batch monitor's alerts to people (DOMAIN §7): BATCH_OPEN, BATCH_DELAYED (and BATCH_AT_RISK) episodes.

A config's episode follows its alert state: a new state ends the old episode and
opens one of the new kind; NONE (recovered, or the config deactivated) ends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitoring.batches.models import AlertState, BatchConfig
from portal.alerts.models import AlertEpisode
from portal.alerts.services import alert_resolve, alerts_open_bulk
from portal.services import PendingMessage

if TYPE_CHECKING:
    from monitoring.batches.scan import Decision


def batch_alert_subject(config: BatchConfig) -> str:
    return f"batch:{config.tenant}/{config.name}"


def batch_alert_follow(*, config: BatchConfig, before: str, after: str, summary: str = "") -> None:
    opening = _episode_moved(config=config, before=before, after=after, summary=summary)
    alerts_open_bulk(episodes=[opening] if opening else [])


def _episode_moved(*, config: BatchConfig, before: str, after: str, summary: str) -> AlertEpisode | None:
    """End the episode of the state left; the (unsaved) episode of the state entered, for the caller to open."""
    subject = batch_alert_subject(config)
    if before != after and before != AlertState.NONE:
        alert_resolve(kind=f"BATCH_{before}", subject=subject)
    if after == AlertState.NONE:
        return None
    interface = config.interface.code if config.interface_id else ""
    return AlertEpisode(kind=f"BATCH_{after}", subject=subject, summary=summary, tenant=config.tenant, config=config.name, interface=interface)


def scan_alerts_follow(*, decisions: list[Decision], before: dict[int, str], messages: list[PendingMessage]) -> None:
    """After a scan chunk: each config whose state changed, or that was told again, brings its episode along.

    The episode's summary is the sentence of the control message the change sent. The
    chunk's new episodes are opened together, after the ones that ended.
    """
    told = {d.alert.config_id: m.payload["eventMessage"] for d, m in zip([d for d in decisions if d.state], messages, strict=True)}
    opening = []
    for decision in decisions:
        config, after = decision.alert.config, decision.alert.state
        if before[config.id] != after or config.id in told:
            opening.append(_episode_moved(config=config, before=before[config.id], after=after, summary=told.get(config.id, "")))
    alerts_open_bulk(episodes=[e for e in opening if e])
