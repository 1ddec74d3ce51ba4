"""Placing arrivals into batch windows (DOMAIN §1), for many arrivals at once.

A ``Placement`` locks the configs it works on for the caller's transaction, loads
their latest windows and held arrivals once, places every arrival in memory in the
order given, and writes the result with a handful of bulk statements. The rules:

- no window yet: the arrival opens [extract, extract + window length);
- the *current window* is the latest window while it is OPEN; once it is finished
  (COMPLETED or FAILED) it is the next one, [its end, its end + window length),
  opened by the first arrival inside it;
- inside the current window: the file counts, unless its source was already
  received there (DUPLICATE);
- before it: PREVIOUS_WINDOW; after it: FUTURE_WINDOW, held and applied in
  extract order as soon as the windows before it are finished;
- received == expected: COMPLETED, and the trigger message goes out.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from monitoring.batches import messages as msg
from monitoring.batches.history import usual_arrivals_learn
from monitoring.batches.models import (
    ALERT_DUE_NOW,
    ArrivalException,
    BatchAlert,
    BatchConfig,
    BatchFile,
    BatchSource,
    BatchWindow,
    TriggerStatus,
    WindowStatus,
)
from portal.lib.bulk import rows_insert, rows_update
from portal.services import PendingMessage, outbox_enqueue_bulk

FILE_FIELDS = tuple(f.attname for f in BatchFile._meta.concrete_fields)


@dataclass(frozen=True)
class ArrivalResult:
    """What the API answers for one arrival."""

    window: BatchWindow | None
    window_status: str | None
    exception: str | None

    def as_json(self) -> dict:
        return {
            "window_id": self.window.id if self.window is not None else None,
            "window_status": self.window_status,
            "exception": self.exception,
        }


@dataclass(frozen=True)
class SourceKey:
    """A source of a locked config, as an arrival names it."""

    id: int
    config_id: int
    name: str


@dataclass
class ConfigPlacement:
    """One locked config and what placement needs to know about it."""

    config: BatchConfig
    source_names: list[str]
    latest: BatchWindow | None
    received: set[str] = field(default_factory=set)  # sources counted in the latest window
    held: list[tuple[tuple, BatchFile]] = field(default_factory=list)  # sorted by (extract, arrival order)
    windows: list[BatchWindow] = field(default_factory=list)  # windows this placement has seen


@dataclass
class Event:
    """A control message to write once the rows it names have their keys."""

    state: str
    config: BatchConfig
    view_window: BatchWindow | None = None
    upcoming: tuple[dt.datetime, dt.datetime] | None = None
    file: BatchFile | None = None
    current: bool = False


class Placement:
    """Arrivals, window failures and config changes for a set of configs, locked for the
    caller's transaction; ``flush()`` writes what they did."""

    def __init__(self, *, config_ids: list[int] | QuerySet, now: dt.datetime) -> None:
        """Lock ``config_ids``: a list, or a query of them that the locking statement runs itself."""
        self.now = now
        self.configs: dict[int, ConfigPlacement] = {}
        self.new_windows: list[BatchWindow] = []
        self.changed_windows: dict[int, BatchWindow] = {}
        self.new_files: list[BatchFile] = []
        self.changed_files: dict[int, BatchFile] = {}
        self.repointed: dict[int, BatchConfig] = {}
        self.state_changed: set[int] = set()
        self.completed: set[int] = set()
        self.events: list[Event] = []
        # The window each file placed here goes to, by id(file): windows opened in this
        # placement get their keys only when written, so files take them in flush().
        self.file_windows: dict[int, BatchWindow | None] = {}
        self.order = itertools.count()
        # The configs' sources by (tenant, name), as arrivals name them.
        self.sources: dict[tuple[str, str], SourceKey] = {}
        self._load(config_ids if isinstance(config_ids, QuerySet) else sorted(set(config_ids)))

    @classmethod
    def for_sources(cls, *, tenants: set[str], names: set[str], now: dt.datetime) -> Placement:
        """The configs that expect any of these sources, found by the statement that locks them:
        arrivals need no lookup of their configs before the lock (a round trip less a request)."""
        expecting = BatchSource.objects.filter(tenant__in=tenants, name__in=names).values("config_id")
        return cls(config_ids=expecting, now=now)

    def _load(self, which: list[int] | QuerySet) -> None:
        # Locked in id order: two requests over the same configs queue up instead of
        # deadlocking, and neither opens a window the other has just opened.
        configs = list(BatchConfig.objects.select_for_update().filter(id__in=which).order_by("id"))
        config_ids = [config.id for config in configs]
        names: dict[int, list[str]] = defaultdict(list)
        sources = BatchSource.objects.filter(config_id__in=config_ids).order_by()
        for source_id, config_id, tenant, name in sources.values_list("id", "config_id", "tenant", "name"):
            names[config_id].append(name)
            self.sources[(tenant, name)] = SourceKey(source_id, config_id, name)
        # Read after the lock, not joined to it: a join would show a request that waited for the
        # lock the window its config pointed to before (PostgreSQL re-reads only the locked row).
        latest = {w.id: w for w in BatchWindow.objects.filter(id__in=[c.latest_window_id for c in configs if c.latest_window_id])}
        open_windows = set()
        for config in configs:
            window = latest.get(config.latest_window_id)
            if window is not None:
                window.config = config
                if window.status == WindowStatus.OPEN:
                    open_windows.add(window.id)
            self.configs[config.id] = ConfigPlacement(
                config, sorted(names[config.id]), window, windows=[window] if window else []
            )
        # One read for the files counted in the open latest windows and the held ones.
        files = BatchFile.objects.filter(Q(window_id__in=open_windows, counted=True) | Q(config_id__in=config_ids, held=True))
        for file in files.order_by("extract_timestamp", "id"):
            state = self.configs[file.config_id]
            if file.held:
                file.config = state.config
                state.held.append(((file.extract_timestamp, 0, file.id), file))
            else:
                state.received.add(file.source_name)

    def config(self, config_id: int) -> BatchConfig:
        return self.configs[config_id].config

    # --- placing ---------------------------------------------------------------

    def place(self, *, source: SourceKey, extract: dt.datetime, payload: dict) -> ArrivalResult:
        state = self.configs[source.config_id]
        # Positional, as Django builds the rows it reads: far cheaper than keyword
        # arguments, which matters at ten thousand files a request.
        file = BatchFile(*self._new_file_values(state.config.id, source, extract, payload))
        self.new_files.append(file)
        result = self._place(state, file, order=(extract, 1, next(self.order)))
        self._drain(state)
        return result

    def _new_file_values(self, config_id: int, source: SourceKey, extract: dt.datetime, payload: dict) -> list:
        values = {
            "id": None, "config_id": config_id, "source_id": source.id, "source_name": source.name, "window_id": None,
            "extract_timestamp": extract, "received_at": self.now, "payload": payload, "exception": "",
            "held": False, "counted": False, "applied_at": None,
        }
        return [values[name] for name in FILE_FIELDS]

    def _place(self, state: ConfigPlacement, file: BatchFile, *, order: tuple) -> ArrivalResult:
        window, start, end = state.config.current_window(state.latest, file.extract_timestamp)
        if file.extract_timestamp < start:
            return self._previous(state, file, window, start, end)
        if file.extract_timestamp >= end:
            return self._hold(state, file, window, start, end, order)
        if window is None:
            window = self._open(state, start, end, file.extract_timestamp)
        return self._record(state, file, window)

    def _record(self, state: ConfigPlacement, file: BatchFile, window: BatchWindow) -> ArrivalResult:
        self.file_windows[id(file)] = window
        if file.source_name not in state.source_names:
            # A held arrival whose source the config stopped expecting while it waited: it
            # belongs to this window but must not count towards (and so complete) it.
            file.counted = False
            return ArrivalResult(window, window.status, file.exception or None)
        if file.source_name in state.received:
            file.exception = ArrivalException.DUPLICATE
            file.counted = False
            self.events.append(Event(ArrivalException.DUPLICATE, state.config, view_window=window, file=file))
            return ArrivalResult(window, window.status, ArrivalException.DUPLICATE)
        state.received.add(file.source_name)
        file.counted = True
        window.received_count += 1
        self._changed(window)
        if state.config.usual_arrivals:
            self.state_changed.add(state.config.id)  # an AT_RISK source that arrives is a RECOVERED
        if window.received_count >= window.expected_count:
            self._complete(state, window)
        return ArrivalResult(window, window.status, None)

    def _previous(
        self, state: ConfigPlacement, file: BatchFile, current: BatchWindow | None, start: dt.datetime, end: dt.datetime
    ) -> ArrivalResult:
        file.exception = ArrivalException.PREVIOUS_WINDOW
        window = self.file_windows[id(file)] = self._containing(state, file.extract_timestamp)
        if window is not None:
            event = Event(file.exception, state.config, view_window=window, file=file)
        else:
            event = Event(file.exception, state.config, view_window=current, upcoming=(start, end), file=file, current=True)
        self.events.append(event)
        return ArrivalResult(window, window.status if window else None, file.exception)

    def _hold(
        self,
        state: ConfigPlacement,
        file: BatchFile,
        current: BatchWindow | None,
        start: dt.datetime,
        end: dt.datetime,
        order: tuple,
    ) -> ArrivalResult:
        file.exception = ArrivalException.FUTURE_WINDOW
        file.held = True
        self.file_windows[id(file)] = None
        bisect.insort(state.held, (order, file), key=lambda item: item[0])
        self.events.append(Event(file.exception, state.config, view_window=current, upcoming=(start, end), file=file))
        return ArrivalResult(None, None, file.exception)

    def _containing(self, state: ConfigPlacement, extract: dt.datetime) -> BatchWindow | None:
        for window in state.windows:
            if window.contains(extract):
                return window
        found = (
            BatchWindow.objects.filter(config_id=state.config.id, window_start__lte=extract, window_end__gt=extract)
            .order_by("-window_start")
            .first()
        )
        if found is not None:
            found.config = state.config
            state.windows.append(found)
        return found

    def _open(self, state: ConfigPlacement, start: dt.datetime, end: dt.datetime, extract: dt.datetime) -> BatchWindow:
        window = BatchWindow(
            config=state.config,
            status=WindowStatus.OPEN,
            extract_timestamp=extract,
            window_start=start,
            window_end=end,
            expected_count=len(state.source_names),
            received_count=0,
            max_wait_hours=state.config.max_wait_hours,
            opened_at=self.now,
        )
        self.new_windows.append(window)
        state.windows.append(window)
        state.latest = window
        state.received = set()
        state.config.latest_window = window
        self.repointed[state.config.id] = state.config
        self.state_changed.add(state.config.id)
        return window

    def _complete(self, state: ConfigPlacement, window: BatchWindow) -> None:
        window.status = WindowStatus.COMPLETED
        window.completed_at = self.now
        window.trigger_status = TriggerStatus.SENT  # its message is written in this transaction
        self._changed(window)
        self.state_changed.add(state.config.id)
        self.completed.add(state.config.id)
        self.events.append(Event(WindowStatus.COMPLETED, state.config, view_window=window))

    def _changed(self, window: BatchWindow) -> None:
        if window.pk is not None:
            self.changed_windows[window.pk] = window

    def _drain(self, state: ConfigPlacement) -> None:
        """Apply held arrivals, oldest extract first, while the windows before them are finished."""
        while state.held:
            order, file = state.held[0]
            _, _, end = state.config.current_window(state.latest, file.extract_timestamp)
            if file.extract_timestamp >= end:
                return  # the current window (open or not yet opened) still comes first
            state.held.pop(0)
            file.held = False
            file.applied_at = self.now
            if file.pk is not None:
                self.changed_files[file.pk] = file
            self._place(state, file, order=order)

    # --- operator actions --------------------------------------------------------

    def fail(self, *, window: BatchWindow, actor_name: str, reason: str) -> None:
        state = self.configs[window.config_id]
        window.config = state.config
        window.status = WindowStatus.FAILED
        window.failed_at = self.now
        window.failed_by = actor_name
        window.fail_reason = reason
        self._changed(window)
        self.state_changed.add(state.config.id)
        self._drain(state)

    def fail_current(self, *, config_id: int, actor_name: str, reason: str) -> BatchWindow:
        """Fail the window that blocks held arrivals, opening it (empty) when no arrival has."""
        state = self.configs[config_id]
        if not state.held:
            raise ValueError("no held arrival for this config")
        window, start, end = state.config.current_window(state.latest, state.held[0][1].extract_timestamp)
        if window is None:
            window = self._open(state, start, end, start)
        self.fail(window=window, actor_name=actor_name, reason=reason)
        return window

    def sources_changed(self, *, config_id: int) -> None:
        """Re-count the OPEN latest window against the config's sources as they are now."""
        state = self.configs[config_id]
        window = state.latest
        if window is None or window.is_finished:
            return
        names = set(state.source_names)
        window.expected_count = len(names)
        window.received_count = len(state.received & names)
        self._changed(window)
        if window.received_count >= window.expected_count:
            self._complete(state, window)
        self._drain(state)

    def drain(self, *, config_id: int) -> None:
        self._drain(self.configs[config_id])

    # --- writing -----------------------------------------------------------------

    def flush(self) -> None:
        """Write everything placed, then the messages it raised, in the caller's transaction."""
        rows_insert(self.new_windows)
        for file in [*self.new_files, *self.changed_files.values()]:
            if id(file) in self.file_windows:
                window = self.file_windows[id(file)]
                file.window_id = window.id if window is not None else None
        rows_update(
            list(self.changed_windows.values()),
            ["status", "received_count", "expected_count", "completed_at", "trigger_status", "failed_at", "failed_by", "fail_reason"],
        )
        rows_insert(self.new_files)
        rows_update(list(self.changed_files.values()), ["held", "window", "counted", "exception", "applied_at"])
        rows_update(list(self.repointed.values()), ["latest_window"])
        if self.state_changed:
            BatchAlert.objects.filter(config_id__in=self.state_changed).update(due_at=ALERT_DUE_NOW)
        usual_arrivals_learn(configs=[self.configs[config_id].config for config_id in self.completed])
        outbox_enqueue_bulk(messages=[self._message(event) for event in self.events])
        self.new_windows, self.changed_windows, self.new_files, self.changed_files = [], {}, [], {}
        self.repointed, self.state_changed, self.events, self.file_windows = {}, set(), [], {}
        self.completed = set()

    def _message(self, event: Event) -> PendingMessage:
        config = event.config
        if event.view_window is not None:
            view = msg.WindowView.of(event.view_window)
        else:
            start, end = event.upcoming
            view = msg.WindowView.upcoming(config, start, end, len(self.configs[config.id].source_names))
        if event.state == WindowStatus.COMPLETED:
            payload = msg.control_message(
                state="COMPLETED", config=config, view=view, now=self.now, text=msg.completed_text(view, config)
            )
            return PendingMessage(msg.KIND, f"batch-trigger:{event.view_window.id}", payload)
        file = event.file
        if event.state == ArrivalException.DUPLICATE:
            text = msg.duplicate_text(view, file.source_name, file.extract_timestamp)
        elif event.state == ArrivalException.PREVIOUS_WINDOW:
            text = msg.previous_text(view, file.source_name, file.extract_timestamp, current=event.current)
        else:
            text = msg.future_text(view, file.source_name, file.extract_timestamp)
        payload = msg.control_message(
            state=event.state, config=config, view=view, now=self.now, text=text, argument=file.source_name
        )
        return PendingMessage(msg.KIND, f"batch-file:{file.id}:{event.state}", payload)
