"""Invariants of a deployment, as Django system checks with ids."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.checks.registry import registry
from django.utils.module_loading import import_string


class WithoutWebChecks:
    """A management command's system checks but the URL, template and admin ones: for the back-end loops, which serve no page.

    Those import the URLconf (every view) and every template tag library (DRF's brings requests,
    Markdown, Pygments, PyYAML...): some 20 MB in each process that never answers a request. The
    web process loads both anyway, and `run_worker` runs every check before its cluster starts.
    """

    def check(self, *args, **kwargs):
        web = {check for check in registry.registered_checks if {Tags.urls, Tags.templates, Tags.admin} & set(getattr(check, "tags", ()))}
        registry.registered_checks -= web
        try:
            return super().check(*args, **kwargs)
        finally:
            registry.registered_checks |= web


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
