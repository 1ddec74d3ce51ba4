"""The worker's outcome journal (DOMAIN §5): a finished step's outcome is kept until the database has it.

One JSON line per finished attempt in ``STEP_JOURNAL_FILE`` (under PORTAL_DATA_DIR), written and
fsync'ed before the worker writes the outcome to the database, removed once it is there. A worker
that dies between the two (or gives up while the database is away) leaves the line; every worker
on the host replays what is left when it starts and before each task, so a step that finished is
never taken for a lost one and run again. The lines are keyed by the claim token, and carry the
job, generation, state and attempt. Writing an outcome twice is harmless: ``job_attempt_finish``
applies an attempt's outcome once.

Processes of one host share the file under an advisory lock (fcntl) held only for file operations.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)


def _path() -> Path:
    return Path(settings.STEP_JOURNAL_FILE)


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def journal_record(entry: dict) -> None:
    """Append one outcome (it must carry ``token``) and fsync it before returning."""
    line = json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n"
    with _locked() as path:
        created = not path.exists()
        with open(path, "a", encoding="utf-8") as journal:
            journal.write(line)
            journal.flush()
            os.fsync(journal.fileno())
        if created:
            _fsync_dir(path)


def journal_entries() -> list[dict]:
    """The outcomes not yet settled, oldest first (a torn last line, from a crash mid-write, is skipped)."""
    path = _path()
    if not path.exists() or path.stat().st_size == 0:
        return []
    with _locked():
        return _read(path)


def _read(path: Path) -> list[dict]:
    entries = []
    if not path.exists():
        return entries
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("token"):
            entries.append(entry)
    return entries


def journal_settle(token: str) -> None:
    """The database has this outcome: drop its line (the file is rewritten and renamed into place)."""
    with _locked() as path:
        entries = _read(path)
        kept = [entry for entry in entries if entry["token"] != str(token)]
        if len(kept) == len(entries):
            return
        fresh = path.with_suffix(path.suffix + ".new")
        with open(fresh, "w", encoding="utf-8") as journal:
            journal.writelines(json.dumps(e, separators=(",", ":"), sort_keys=True) + "\n" for e in kept)
            journal.flush()
            os.fsync(journal.fileno())
        os.replace(fresh, path)
        _fsync_dir(path)
