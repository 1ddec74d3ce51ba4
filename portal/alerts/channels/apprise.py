"""The ``apprise`` channel: any Apprise URL (Slack, Microsoft Teams, PagerDuty, Opsgenie, Telegram, ...)."""

from __future__ import annotations

import apprise as apprise_lib

from portal.alerts.channels import Undeliverable
from portal.alerts.channels.email import message_text


def check(target: str) -> list[str]:
    if not target.strip():
        return ["give an Apprise URL, e.g. slack://... or msteams://..."]
    if apprise_lib.Apprise.instantiate(target.strip()) is None:
        scheme = target.split("://", 1)[0] if "://" in target else target[:20]
        return [f"Apprise cannot use this URL ({scheme}://...): unknown service or a malformed URL"]
    return []


def shown(target: str) -> str:
    plugin = apprise_lib.Apprise.instantiate(target.strip()) if target.strip() else None
    return plugin.url(privacy=True) if plugin is not None else "***"


def send(channel, payload: dict) -> None:
    notifier = apprise_lib.Apprise()
    if not notifier.add(channel.target.strip()):
        raise Undeliverable("Apprise cannot use the channel's URL")
    title, text = message_text(payload["body"])
    if not notifier.notify(title=title, body=text):
        raise RuntimeError("the Apprise service did not take the notification (see the log for its answer)")
