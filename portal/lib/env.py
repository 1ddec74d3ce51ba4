"""Typed readers for environment variables.

Every reader fails with the variable's name and the bad value, so a wrong
deployment setting stops start-up with a message an operator can act on.
"""

from __future__ import annotations

import ipaddress
import os
import zoneinfo
from collections.abc import Sequence

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class EnvError(ValueError):
    """A bad value in an environment variable."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"environment variable {name}={value!r} is invalid: expected {expected}")
        self.name = name


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise EnvError(name, raw, "a boolean (1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EnvError(name, raw, "an integer") from None
    if minimum is not None and value < minimum:
        raise EnvError(name, raw, f"an integer of at least {minimum}")
    return value


def env_list(name: str, default: Sequence[str] = ()) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str, default: Sequence[str] = ()) -> list[str]:
    """A comma list of IP addresses or networks (CIDR), each checked now rather than at first use."""
    items = env_list(name, default)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise EnvError(name, os.environ.get(name, ""), f"IP addresses or networks, comma separated ({item!r} is neither)") from None
    return items


def env_choice(name: str, choices: Sequence[str], default: str) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise EnvError(name, raw, "one of " + ", ".join(choices))
    return value


def env_timezone(name: str, default: str = "UTC") -> str:
    raw = os.environ.get(name, default).strip() or default
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise EnvError(name, raw, "an IANA time zone such as Europe/Berlin") from None
    return raw


def env_url(name: str, default: str = "", *, schemes: Sequence[str] = ()) -> str:
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    scheme, sep, rest = raw.partition("://")
    if not sep or not rest or (schemes and scheme not in schemes):
        wanted = "a URL" + (" with scheme " + " or ".join(schemes) if schemes else "")
        raise EnvError(name, raw, wanted)
    return raw


def env_file_load(path) -> list[str]:
    """``NAME=value`` lines of a dev checkout's ``.env`` (written by ``make run``) for the variables the
    environment does not set; returns the names taken. No file: nothing (production has none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    taken = []
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        name = name.strip()
        if not sep or not name or name.startswith("#") or name in os.environ:
            continue
        os.environ[name] = value.strip()
        taken.append(name)
    return taken
