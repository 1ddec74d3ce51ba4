"""DOMAIN §4's login throttle: ten wrong passwords within a minute, for one account or from one
address, and every further login or token request of that account or address answers 429 until
the minute has passed. The console's login, the admin's, and the API's token routes share it."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from portal import clock
from portal.models import LoginFailures

# Rows of windows this old are gone for good: a spray of usernames leaves no lasting trace.
FORGET_AFTER = dt.timedelta(hours=1)


def login_keys(*, username: str | None, address: str | None) -> list[str]:
    keys = [f"address:{address}"] if address else []
    if username:
        keys.append(f"account:{username.strip().lower()[:150]}")
    return keys


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def login_failure_record(*, username: str | None, address: str | None) -> None:
    """Count one wrong password against the account and the address (a new window when the last one ended)."""
    now = clock.now()
    for key in login_keys(username=username, address=address):
        counted = LoginFailures.objects.filter(key=key, window_started_at__gt=now - _window()).update(failures=F("failures") + 1)
        if counted:
            continue
        try:
            with transaction.atomic():
                LoginFailures.objects.update_or_create(key=key, defaults={"window_started_at": now, "failures": 1})
        except IntegrityError:  # another worker opened the window first: count in it
            LoginFailures.objects.filter(key=key).update(failures=F("failures") + 1)
    LoginFailures.objects.filter(window_started_at__lt=now - FORGET_AFTER).delete()


def login_locked_for(*, username: str | None, address: str | None) -> int:
    """Seconds until login is allowed again for this account and address (0: allowed now)."""
    now = clock.now()
    starts = LoginFailures.objects.filter(
        key__in=login_keys(username=username, address=address),
        window_started_at__gt=now - _window(),
        failures__gte=settings.LOGIN_FAILURES_MAX,
    ).values_list("window_started_at", flat=True)
    return max((int((start + _window() - now).total_seconds()) + 1 for start in starts), default=0)


def on_login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    """``user_login_failed`` from Django's authenticate(): the forms and the token route alike."""
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    login_failure_record(username=credentials.get("username"), address=address)
