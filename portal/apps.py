from __future__ import annotations

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from portal import checks  # noqa: F401  (registers the system checks)
        from portal.metrics import DomainCollector

        if not getattr(REGISTRY, "_portal_domain_collector", False):
            REGISTRY.register(DomainCollector())
            REGISTRY._portal_domain_collector = True
