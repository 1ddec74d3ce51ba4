"""DRF permission classes built on the roles."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from portal import roles


class IsViewer(BasePermission):
    """Read for Viewers, Operators and Administrators (the API's default)."""

    def has_permission(self, request, view) -> bool:
        return roles.can_read(request.user)


class IsFeeder(BasePermission):
    def has_permission(self, request, view) -> bool:
        return roles.can_feed(request.user)


class IsOperator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return roles.can_operate(request.user)


class IsAdministrator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return roles.can_administer(request.user)


class ReadOrAdminister(BasePermission):
    """Configuration: everyone who reads may look, Administrators change."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return roles.can_read(request.user)
        return roles.can_administer(request.user)


class ReadOrFeed(BasePermission):
    """Feeds: readers read, Feeders (and Operators, Administrators) post."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return roles.can_read(request.user)
        return roles.can_feed(request.user)
