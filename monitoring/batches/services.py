"""Services of the batch monitor: arrivals, configs and window actions (DOMAIN §1).

The API, the admin, the management commands and the demo call these, so that
validation, locking, audit and outbox messages live in one place. The scan is in
``monitoring.batch_scan``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F

from monitoring.batches.alerts import batch_alert_follow
from monitoring.batches.models import (
    ALERT_DUE_NOW,
    LATEST_EXTRACT,
    AlertState,
    BatchAlert,
    BatchConfig,
    BatchFile,
    BatchSource,
    BatchWindow,
    WindowStatus,
)
from monitoring.batches.placement import ArrivalResult, Placement, SourceKey
from monitoring.summaries.models import MonitoredInterface
from portal import clock, roles
from portal.services import audit_record

MAX_ARRIVALS_PER_REQUEST = 10_000
ARRIVAL_FIELDS = ("tenant", "source", "extract_timestamp")


@dataclass(frozen=True)
class InputError:
    """One bad field of one item of a request."""

    index: int | None
    field: str
    message: str

    def as_json(self) -> dict:
        return {"index": self.index, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"item {self.index}: " if self.index is not None else ""
        return f"{where}{self.field}: {self.message}"


class BatchInputError(ValueError):
    """Bad input: nothing of the request was written."""

    def __init__(self, errors: list[InputError]) -> None:
        super().__init__("; ".join(str(e) for e in errors[:5]) + (" ..." if len(errors) > 5 else ""))
        self.errors = errors

    def as_json(self) -> dict:
        return {"detail": str(self), "errors": [e.as_json() for e in self.errors]}


class WindowStateError(ValueError):
    """An action the window's current status does not allow."""

    def __init__(self, window: BatchWindow, action: str) -> None:
        super().__init__(f"window {window.id} is {window.status}: only an OPEN window can be {action}")
        self.status = window.status


# --- arrivals --------------------------------------------------------------------


@dataclass(frozen=True)
class ShapedArrival:
    """An item with the fields of an arrival, its config not yet found."""

    index: int
    tenant: str
    source: str
    extract: dt.datetime
    payload: dict


def arrivals_shape(*, items: list) -> tuple[list[ShapedArrival], list[InputError]]:
    """Check every item's fields (no query): the arrivals they make, and what is wrong with the others."""
    errors: list[InputError] = []
    shaped: list[ShapedArrival] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(InputError(index, "(item)", "an arrival is an object with tenant, source and extract_timestamp"))
            continue
        bad = False
        for name in ARRIVAL_FIELDS:
            value = item.get(name)
            if not isinstance(value, str) or not value.strip():
                errors.append(InputError(index, name, "required, a non-empty string"))
                bad = True
        if bad:
            continue
        try:
            extract = clock.parse_instant(item["extract_timestamp"])
        except ValueError as exc:
            errors.append(InputError(index, "extract_timestamp", str(exc)))
            continue
        if extract >= LATEST_EXTRACT:
            errors.append(InputError(index, "extract_timestamp", f"out of range: must be before {LATEST_EXTRACT:%Y-%m-%d}"))
            continue
        shaped.append(ShapedArrival(index, item["tenant"], item["source"], extract, item))
    return shaped, errors


def arrivals_resolve(
    *, placement: Placement, arrivals: list[ShapedArrival]
) -> tuple[list[tuple[ShapedArrival, SourceKey]], list[InputError]]:
    """Each arrival's source among the locked configs' (a query only when one is unknown)."""
    sources = placement.sources
    known_tenants = {tenant for tenant, _ in sources}
    if any((a.tenant, a.source) not in sources for a in arrivals):
        # Only a refused item needs to know which tenants exist, to name the field that is wrong.
        tenants = {a.tenant for a in arrivals}
        known_tenants = set(BatchConfig.objects.filter(tenant__in=tenants).values_list("tenant", flat=True).distinct())
    found, errors = [], []
    for arrival in arrivals:
        if arrival.tenant not in known_tenants:
            errors.append(InputError(arrival.index, "tenant", f"unknown tenant {arrival.tenant!r}"))
        elif (arrival.tenant, arrival.source) not in sources:
            errors.append(
                InputError(arrival.index, "source", f"no config of tenant {arrival.tenant!r} expects source {arrival.source!r}")
            )
        else:
            found.append((arrival, sources[(arrival.tenant, arrival.source)]))
    return found, errors


def arrivals_check_shape(data) -> list:
    """The request body: one arrival object, or a list of at most MAX_ARRIVALS_PER_REQUEST."""
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise BatchInputError([InputError(None, "(body)", "an arrival object or a list of them")])
    if not data:
        raise BatchInputError([InputError(None, "(body)", "the list is empty")])
    if len(data) > MAX_ARRIVALS_PER_REQUEST:
        raise BatchInputError(
            [InputError(MAX_ARRIVALS_PER_REQUEST, "(item)", f"at most {MAX_ARRIVALS_PER_REQUEST} arrivals per request")]
        )
    return data


def arrivals_record(*, items: list) -> list[ArrivalResult]:
    """Place arrivals in order, all or nothing: one bad item refuses the whole request."""
    results, _ = arrivals_apply(items=items, all_or_nothing=True)
    return results


def arrivals_apply(*, items: list, all_or_nothing: bool) -> tuple[list[ArrivalResult], list[InputError]]:
    """Check the items, then in one transaction lock the configs that expect their sources, find
    each item's config and place the good items in the order given. All or nothing: a bad item
    refuses them all (BatchInputError, nothing written); otherwise the bad ones are returned."""
    shaped, errors = arrivals_shape(items=items)
    if shaped:
        with transaction.atomic():
            placement = Placement.for_sources(
                tenants={a.tenant for a in shaped}, names={a.source for a in shaped}, now=clock.now()
            )
            found, unknown = arrivals_resolve(placement=placement, arrivals=shaped)
            errors = sorted(errors + unknown, key=lambda e: e.index)
            if errors and all_or_nothing:
                raise BatchInputError(errors)  # inside the transaction: its locks go, nothing is written
            results = [placement.place(source=source, extract=a.extract, payload=a.payload) for a, source in found]
            placement.flush()
            return results, errors
    if errors and all_or_nothing:
        raise BatchInputError(errors)
    return [], errors


# --- window actions ----------------------------------------------------------------


@dataclass(frozen=True)
class FailOutcome:
    window: BatchWindow
    applied: int  # held arrivals placed once the window was out of the way
    still_held: int


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise BatchInputError([InputError(None, "reason", "a reason is required")])
    return reason


def _fail_audited(placement: Placement, config_id: int, fail, *, actor, reason: str, before: dict) -> FailOutcome:
    """Fail a window through ``fail`` (which returns it), apply what it held back, audit; inside a transaction."""
    held_before = len(placement.configs[config_id].held)
    window = fail()
    still_held = len(placement.configs[config_id].held)
    placement.flush()
    audit_record(
        actor=actor,
        action="batch_window.fail",
        obj=window,
        before={"status": WindowStatus.OPEN, **before},
        after={"status": WindowStatus.FAILED, "held_applied": held_before - still_held},
        reason=reason,
    )
    return FailOutcome(window, held_before - still_held, still_held)


def batch_window_fail(*, window_id: int, actor, reason: str) -> FailOutcome:
    """An operator fails an OPEN window: it counts as finished, so held arrivals behind it move on."""
    reason = _clean_reason(reason)
    config_id = BatchWindow.objects.values_list("config_id", flat=True).get(id=window_id)
    with transaction.atomic():
        placement = Placement(config_ids=[config_id], now=clock.now())
        window = placement.configs[config_id].latest
        if window is None or window.id != window_id or window.status != WindowStatus.OPEN:
            raise WindowStateError(BatchWindow.objects.get(id=window_id), "failed")

        def fail() -> BatchWindow:
            placement.fail(window=window, actor_name=roles.actor_label(actor), reason=reason)
            return window

        return _fail_audited(placement, config_id, fail, actor=actor, reason=reason, before={})


def held_arrival_release(*, file_id: int, actor, reason: str) -> FailOutcome:
    """Release held arrivals by failing the window that blocks them (opened empty if no file has)."""
    reason = _clean_reason(reason)
    config_id = BatchFile.objects.values_list("config_id", flat=True).get(id=file_id)
    with transaction.atomic():
        placement = Placement(config_ids=[config_id], now=clock.now())
        if not any(file.id == file_id for _, file in placement.configs[config_id].held):
            raise BatchInputError([InputError(None, "id", f"arrival {file_id} is not held (it was applied meanwhile)")])
        return _fail_audited(
            placement, config_id,
            lambda: placement.fail_current(config_id=config_id, actor_name=roles.actor_label(actor), reason=reason),
            actor=actor, reason=reason, before={"blocking_held_arrival": file_id},
        )


# --- configs --------------------------------------------------------------------------

CONFIG_FIELDS = (
    "tenant", "name", "description", "window_hours", "max_wait_hours", "target_app", "target_workflow",
    "exception_check", "active", "realert_minutes", "risk_tolerance_minutes", "interface",
)


def batch_config_snapshot(config: BatchConfig) -> dict:
    """The config as the audit log keeps it: natural keys, sources by name."""
    data = {name: getattr(config, name) for name in CONFIG_FIELDS if name != "interface"}
    data["interface"] = config.interface.code if config.interface_id else None
    data["sources"] = sorted(config.sources.values_list("name", flat=True))
    return data


def batch_config_conflicts(*, tenant: str, name: str, sources: list[str], exclude_id: int | None) -> list[InputError]:
    """A name is unique per tenant; a source name too, across the tenant's configs."""
    errors = []
    same_name = BatchConfig.objects.filter(tenant=tenant, name=name)
    if exclude_id is not None:
        same_name = same_name.exclude(id=exclude_id)
    if same_name.exists():
        errors.append(InputError(None, "name", f"tenant {tenant!r} already has a config named {name!r}"))
    taken = BatchSource.objects.filter(tenant=tenant, name__in=sources).select_related("config")
    if exclude_id is not None:
        taken = taken.exclude(config_id=exclude_id)
    for source in taken.order_by("name"):
        errors.append(
            InputError(None, "sources", f"source {source.name!r} is already expected by config {source.config.name!r}")
        )
    return errors


def _check_config(*, tenant: str, name: str, sources: list[str], exclude_id: int | None) -> None:
    errors = []
    if not sources:
        errors.append(InputError(None, "sources", "a config expects at least one source"))
    if len(set(sources)) != len(sources):
        errors.append(InputError(None, "sources", "a source is listed twice"))
    errors += batch_config_conflicts(tenant=tenant, name=name, sources=sources, exclude_id=exclude_id)
    if errors:
        raise BatchInputError(errors)


def _resolve_interface(fields: dict) -> dict:
    code = fields.get("interface")
    if isinstance(code, str):
        try:
            fields = {**fields, "interface": MonitoredInterface.objects.get(code=code)}
        except MonitoredInterface.DoesNotExist:
            raise BatchInputError([InputError(None, "interface", f"unknown interface {code!r}")]) from None
    return fields


def batch_config_create(*, actor, fields: dict, sources: list[str]) -> BatchConfig:
    """A new config with its sources (an Administrator's change, audited)."""
    fields = _resolve_interface(fields)
    _check_config(tenant=fields["tenant"], name=fields["name"], sources=sources, exclude_id=None)
    now = clock.now()
    try:
        with transaction.atomic():
            config = BatchConfig.objects.create(**fields, created_at=now, updated_at=now)
            BatchSource.objects.bulk_create(
                [BatchSource(config=config, tenant=config.tenant, name=n, position=i) for i, n in enumerate(sources)]
            )
            BatchAlert.objects.create(config=config)
            audit_record(actor=actor, action="batch_config.create", obj=config, after=batch_config_snapshot(config))
    except IntegrityError:
        # A concurrent request took the name or a source between the check and the insert.
        _check_config(tenant=fields["tenant"], name=fields["name"], sources=sources, exclude_id=None)
        raise
    return config


def batch_config_update(*, actor, config_id: int, fields: dict, sources: list[str] | None) -> BatchConfig:
    """Change a config (and its sources); open windows and alerts follow (audited)."""
    fields = _resolve_interface(fields)
    with transaction.atomic():
        config = BatchConfig.objects.select_for_update().get(id=config_id)
        before = batch_config_snapshot(config)
        names = sources if sources is not None else before["sources"]
        tenant, name = fields.get("tenant", config.tenant), fields.get("name", config.name)
        _check_config(tenant=tenant, name=name, sources=names, exclude_id=config_id)
        for key, value in fields.items():
            setattr(config, key, value)
        config.updated_at = clock.now()
        config.save()
        BatchSource.objects.filter(config=config).exclude(name__in=names).delete()
        existing = {source.name: source for source in BatchSource.objects.filter(config=config)}
        for position, source_name in enumerate(names):
            if source_name in existing:
                existing[source_name].position = position
        BatchSource.objects.bulk_update(list(existing.values()), ["position"])
        BatchSource.objects.bulk_create(
            [
                BatchSource(config=config, tenant=config.tenant, name=n, position=i)
                for i, n in enumerate(names)
                if n not in existing
            ]
        )
        return batch_config_changed(actor=actor, config_id=config_id, before=before)


def batch_config_changed(*, actor, config_id: int, before: dict | None, action: str = "batch_config.update") -> BatchConfig:
    """After a config or its sources changed (API or admin): re-count its open window, apply
    held arrivals a new window length lets through, close the alert of a deactivated config
    without a message, have the next scan look at it again, and audit the change."""
    with transaction.atomic():
        placement = Placement(config_ids=[config_id], now=clock.now())
        tenant = placement.config(config_id).tenant
        BatchSource.objects.filter(config_id=config_id).exclude(tenant=tenant).update(tenant=tenant)
        placement.sources_changed(config_id=config_id)
        placement.drain(config_id=config_id)
        placement.state_changed.add(config_id)
        alert, _ = BatchAlert.objects.get_or_create(config_id=config_id)
        placement.flush()
        config = placement.config(config_id)
        if not config.active and alert.state != AlertState.NONE:
            BatchAlert.objects.filter(config_id=config_id).update(
                state=AlertState.NONE, window=None, sequence=0, transition=F("transition") + 1, due_at=ALERT_DUE_NOW
            )
            batch_alert_follow(config=config, before=alert.state, after=AlertState.NONE)
        config = BatchConfig.objects.select_related("interface").get(id=config_id)
        after = batch_config_snapshot(config)
        if after != before:
            audit_record(actor=actor, action=action, obj=config, before=before, after=after)
    return config


def batch_config_delete(*, actor, config_id: int) -> None:
    """Only a config that never received anything may go; others are deactivated instead."""
    with transaction.atomic():
        config = BatchConfig.objects.select_for_update().get(id=config_id)
        if config.windows.exists() or config.files.exists():
            raise BatchInputError(
                [InputError(None, "id", f"config {config.name!r} has windows or files: deactivate it instead")]
            )
        before = batch_config_snapshot(config)
        audit_record(actor=actor, action="batch_config.delete", obj=config, before=before)
        config.delete()
