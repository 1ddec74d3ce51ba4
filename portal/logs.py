"""Log lines that say which request, job or task they belong to, as text or as JSON (LOG_FORMAT).

The ids live in a context variable: a web request, a job's step and a scheduler task's run each
open a ``log_scope``, and every line logged inside it, by any module, carries them.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator

# A mapping that is never changed in place (log_scope sets a new one), so one shared empty default is safe.
_EMPTY: dict[str, object] = {}
_context: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("portal_log_context", default=_EMPTY)  # noqa: B039


@contextlib.contextmanager
def log_scope(**ids: object) -> Iterator[None]:
    """Add ids (request, job, task) to every log line inside the block."""
    token = _context.set({**_context.get(), **{name: value for name, value in ids.items() if value is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def log_request_start(request_id: str) -> None:
    """A request's id for every line until the next request of this thread or task starts.

    Not a scope that ends with the view: Django logs a 4xx or 5xx answer (django.request) after
    every middleware has returned, and that line must name the request too.
    """
    _context.set({"request": request_id})


class ContextFilter(logging.Filter):
    """Puts the scope's ids on each record: ``record.context`` for text, ``record.ids`` for JSON."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _context.get()
        record.ids = ids
        record.context = " ".join(f"{name}={value}" for name, value in ids.items()) or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the scope's ids, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "ids", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
