"""Invariants of a deployment, as Django system checks with ids."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string


@register()
def check_control_queue(app_configs, **kwargs):
    errors = []
    if settings.CONTROL_QUEUE_BACKEND not in settings.CONTROL_QUEUE_BACKENDS:
        errors.append(Error(f"unknown CONTROL_QUEUE_BACKEND {settings.CONTROL_QUEUE_BACKEND!r}", id="portal.E001"))
    if settings.CONTROL_QUEUE_BACKEND == "sqs" and not settings.CONTROL_QUEUE_URL:
        errors.append(Error("CONTROL_QUEUE_BACKEND=sqs needs CONTROL_QUEUE_URL", id="portal.E002"))
    return errors


@register()
def check_scheduler_actions(app_configs, **kwargs):
    errors = []
    for subtype, path in settings.SCHEDULER_ACTIONS.items():
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(Error(f"scheduler action for {subtype} cannot be imported: {exc}", id="portal.E003"))
    return errors


@register(deploy=True)
def check_sqlite_in_production(app_configs, **kwargs):
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return [Warning("SQLite is the embedded default; use PostgreSQL (DATABASE_URL) in production", id="portal.W001")]
    return []
