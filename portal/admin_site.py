"""The admin site of the portal: reached through a role, not Django's staff flag.

DOMAIN §6: Operators and Administrators reach the admin through their role, and
Viewers look at it read-only as the model admins allow (portal.admin.ReaderAdmin);
a Feeder, or an account with no role, is refused with a plain sentence. Times are
shown as on the console and in the CLI: in PORTAL_TIME_ZONE, the zone named on
every page.
"""

from __future__ import annotations

from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal import roles


def may_use_admin(user) -> bool:
    return user.is_active and roles.can_read(user)


class RoleAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "no_role": "Your account may not open the admin: that needs the Viewer, Operator or Administrator role.",
    }

    def confirm_login_allowed(self, user) -> None:
        if not may_use_admin(user):
            raise ValidationError(self.error_messages["no_role"], code="no_role")


class PortalAdminSite(admin.AdminSite):
    site_header = "Batch operations portal"
    site_title = "Batch operations portal"
    index_title = "Configuration"
    site_url = "/monitor/"
    login_form = RoleAuthenticationForm

    def has_permission(self, request) -> bool:
        return may_use_admin(request.user)

    def each_context(self, request) -> dict:
        return {**super().each_context(request), "portal_time_zone": settings.PORTAL_TIME_ZONE}

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def in_portal_time_zone(request, *args, **kwargs):
            # Rendered inside the zone: a TemplateResponse would otherwise render after it is left.
            with timezone.override(settings.PORTAL_TIME_ZONE):
                response = inner(request, *args, **kwargs)
                if callable(getattr(response, "render", None)) and not getattr(response, "is_rendered", True):
                    response.render()
            return response

        return update_wrapper(in_portal_time_zone, inner)
