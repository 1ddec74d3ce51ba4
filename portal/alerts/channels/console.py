"""The ``console`` channel: one line in the portal's own log (the demo's channel; no outside service)."""

from __future__ import annotations

import logging

log = logging.getLogger("portal.alerts.console")


def check(target: str) -> list[str]:
    return []


def shown(target: str) -> str:
    return target


def send(channel, payload: dict) -> None:
    body = payload["body"]
    log.warning(
        "ALERT [%s] %s %s %s (%s): %s %s", channel.name, body["event"], body["kind"], body["subject"], body["state"],
        body["summary"], body["url"],
    )
