"""Demo data of the alerts (`make run` only): a channel writing to the console log and a rule sending it everything.

Loaded before the engines' demo data, so the alerts their first scan opens are told
on the console log at once: the path from a condition to a person, with no outside service.
"""

from __future__ import annotations

from portal.alerts.config import alert_rule_create, notification_channel_create
from portal.alerts.models import NotificationChannel

DEMO_CHANNEL = "console-log"
DEMO_RULE = "everything to the console log"


def load_alert_demo() -> str:
    if NotificationChannel.objects.filter(name=DEMO_CHANNEL).exists():
        return "alert demo already loaded"
    channel = notification_channel_create(actor="load_demo", name=DEMO_CHANNEL, kind="console", target="the portal's log")
    alert_rule_create(actor="load_demo", name=DEMO_RULE, channels=[channel], repeat_minutes=60)
    return f"channel {DEMO_CHANNEL} (console) and rule {DEMO_RULE!r}"
