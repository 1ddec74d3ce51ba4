"""Settings for the test suite: the real settings with django-q2 run in-process."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "1")
os.environ["Q_SYNC"] = "1"  # django-q2 reads Q_CLUSTER once at import: override_settings cannot reach it
os.environ.setdefault("PORTAL_DATA_DIR", "var/test")
# A test reads the console right after changing what it shows; tests of the snapshot turn it on.
os.environ.setdefault("CONSOLE_SNAPSHOT_SECONDS", "0")
# Playwright's sync API runs an event loop in the test thread; the ORM calls in
# browser tests are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
