from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed
        from prometheus_client import REGISTRY

        from portal import checks  # noqa: F401  (registers the system checks)
        from portal.logins import on_login_failed
        from portal.metrics import DomainCollector

        if not getattr(REGISTRY, "_portal_domain_collector", False):
            REGISTRY.register(DomainCollector())
            REGISTRY._portal_domain_collector = True
        user_login_failed.connect(on_login_failed, dispatch_uid="portal.login_throttle")


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the portal's site: entry by role (portal/admin_site.py)."""

    default = False  # named in INSTALLED_APPS; PortalConfig stays this module's default
    default_site = "portal.admin_site.PortalAdminSite"
