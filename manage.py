#!/usr/bin/env python
from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    from portal.lib.env import EnvError, env_file_load

    # A dev checkout's .env (`make run` writes DEBUG=1 there), so the documented commands run beside a
    # `make run` portal as written; the environment wins, and a deployment has no such file.
    env_file_load(Path(__file__).resolve().parent / ".env")
    try:
        execute_from_command_line(sys.argv)
    except EnvError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
