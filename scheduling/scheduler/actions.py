"""The registry of scheduler-task actions: subtype -> dotted path in settings.SCHEDULER_ACTIONS.

Each action is imported on first use, so an engine registers its action with
one settings line and the state machine never changes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.utils.module_loading import import_string

from portal.lib.taskrun import TaskRun

Action = Callable[[TaskRun], None]


class ActionMissing(LookupError):
    """No action is registered for a subtype: a configuration error, never a silent no-op."""


@functools.cache
def _import(path: str) -> Action:
    return import_string(path)


def action_for(subtype: str) -> Action:
    path = settings.SCHEDULER_ACTIONS.get(subtype)
    if not path:
        raise ActionMissing(f"no action is registered for subtype {subtype} (settings.SCHEDULER_ACTIONS)")
    try:
        return _import(path)
    except ImportError as exc:
        raise ActionMissing(f"the action {path} of subtype {subtype} cannot be imported: {exc}") from exc
