"""Cut-offs (DOMAIN §8): their configuration (Administrators, audited) and the heartbeat's look at them.

On every tick: a cut-off inside its warning time with pending above its minimum has a
CUTOFF_AT_RISK episode per currency, resolved when the pending falls to the minimum or the
cut-off comes; at the cut-off, what is left opens CUTOFF_MISSED (once per cut-off and day,
claimed by a ``CutOffCheck`` row), resolved when all of it is completed or failed, or once
an operator acknowledges it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from monitoring.summaries.currencies import is_currency
from monitoring.summaries.models import MonitoredInterface, Transaction
from portal import clock, roles
from portal.alerts.models import AlertEpisode, AlertKind, AlertState
from portal.alerts.services import alert_open, alert_resolve
from portal.services import audit_record
from scheduling.cutoffs.models import CutOff, CutOffCheck, pending_summary
from scheduling.cutoffs.selectors import cutoff_states, cutoffs_listing, pending_now
from scheduling.scheduler.models import CalendarGroup

FIELDS = ("name", "interface", "currencies", "time", "calendar_group", "effective_from", "effective_to", "warn_minutes", "min_value")
# A cut-off passed while the heartbeat was away is still looked at for CUTOFF_MISSED, up to a day late.
MISSED_LOOKBACK = dt.timedelta(days=1)


# --- configuration -------------------------------------------------------------------------------


def cutoff_check(cutoff: CutOff) -> None:
    """Every problem of a cut-off, by field (ValidationError); the API and the admin say the same."""
    errors: dict[str, list[str]] = {}
    if not (cutoff.name or "").strip():
        errors["name"] = ["a cut-off needs a name"]
    elif CutOff.objects.filter(name=cutoff.name).exclude(id=cutoff.id).exists():
        errors["name"] = [f"a cut-off named {cutoff.name!r} exists already"]
    if not isinstance(cutoff.currencies, list) or not all(isinstance(code, str) for code in cutoff.currencies):
        errors["currencies"] = ["a list of ISO 4217 currency codes (empty: all)"]
    elif unknown := [code for code in cutoff.currencies if not is_currency(code)]:
        errors["currencies"] = [f"{unknown[0]!r} is not an ISO 4217 currency code"]
    elif len(set(cutoff.currencies)) != len(cutoff.currencies):
        errors["currencies"] = ["a currency is listed twice"]
    if cutoff.effective_from and cutoff.effective_to and cutoff.effective_to < cutoff.effective_from:
        errors["effective_to"] = [f"{cutoff.effective_to} is before effective_from {cutoff.effective_from}"]
    if not isinstance(cutoff.warn_minutes, int) or not 0 <= cutoff.warn_minutes <= CutOff.WARN_MINUTES_MAX:
        # Beyond a week the warning instant falls out of the calendar's range and every tick would fail.
        errors["warn_minutes"] = [f"a whole number of minutes, 0 to {CutOff.WARN_MINUTES_MAX}"]
    if cutoff.min_value is None or Decimal(cutoff.min_value) < 0:
        errors["min_value"] = ["a value of 0 or more"]
    if errors:
        raise ValidationError(errors)


def _save(cutoff: CutOff) -> CutOff:
    cutoff_check(cutoff)
    cutoff.updated_at = clock.now()
    cutoff.save()
    return cutoff


def cutoff_create(
    *,
    actor,
    name: str,
    interface: MonitoredInterface,
    time: dt.time,
    calendar_group: CalendarGroup,
    currencies: Sequence[str] = (),
    effective_from: dt.date | None = None,
    effective_to: dt.date | None = None,
    warn_minutes: int = 30,
    min_value: Decimal = Decimal(0),
) -> CutOff:
    roles.require(actor, roles.ADMINISTRATORS, "creating a cut-off")
    cutoff = CutOff(
        name=name, interface=interface, currencies=list(currencies), time=time, calendar_group=calendar_group,
        effective_from=effective_from, effective_to=effective_to, warn_minutes=warn_minutes, min_value=min_value,
        created_at=clock.now(),
    )
    with transaction.atomic():
        _save(cutoff)
        audit_record(actor=actor, action="cutoff.create", obj=cutoff, after=cutoff.snapshot())
    return cutoff


def cutoff_update(*, actor, cutoff: CutOff, **fields) -> CutOff:
    """Change the fields given; ``effective_from``/``effective_to`` may be set to None (open-ended)."""
    roles.require(actor, roles.ADMINISTRATORS, "changing a cut-off")
    with transaction.atomic():
        cutoff = CutOff.objects.select_for_update().select_related("interface", "calendar_group").get(id=cutoff.id)
        before = cutoff.snapshot()
        for name in FIELDS:
            if name in fields and (fields[name] is not None or name.startswith("effective_")):
                setattr(cutoff, name, list(fields[name]) if name == "currencies" else fields[name])
        _save(cutoff)
        audit_record(actor=actor, action="cutoff.update", obj=cutoff, before=before, after=cutoff.snapshot())
    return cutoff


def cutoff_delete(*, actor, cutoff: CutOff) -> None:
    roles.require(actor, roles.ADMINISTRATORS, "deleting a cut-off")
    with transaction.atomic():
        audit_record(actor=actor, action="cutoff.delete", obj=cutoff, before=cutoff.snapshot())
        cutoff.delete()


# --- the heartbeat's look ------------------------------------------------------------------------


def cutoffs_watch(*, now: dt.datetime) -> None:
    """DOMAIN §8 on every tick: CUTOFF_AT_RISK and CUTOFF_MISSED episodes opened and resolved."""
    cutoffs = list(cutoffs_listing())
    risky: dict[str, tuple[str, str]] = {}
    states = cutoff_states(cutoffs, now=now, figures={})
    if any(state.in_warning for state in states):  # the pending is read only when some cut-off is near
        states = cutoff_states(cutoffs, now=now, figures=pending_now(now=now))
    for state in states:
        for currency, (count, value) in state.at_risk.items():
            risky[state.cutoff.subject(state.next_day, currency)] = (pending_summary(count, value, currency), state.cutoff.interface.code)
    checked = set(CutOffCheck.objects.filter(at__gt=now - MISSED_LOOKBACK).values_list("cutoff_id", "at"))
    for cutoff in cutoffs:
        calendar = cutoff.calendar_group.calendar()
        # A cut-off is not missed before it existed: a new one starts with its next moment.
        since = max(now - MISSED_LOOKBACK, cutoff.created_at)
        for day, at in cutoff.occurrences(since, now + dt.timedelta(microseconds=1), calendar):
            if (cutoff.id, at) not in checked:
                _missed_check(cutoff, day=day, at=at, now=now)
    _at_risk_follow(risky)
    _missed_follow({cutoff.name: cutoff for cutoff in cutoffs}, now=now)


def _at_risk_follow(risky: dict[str, tuple[str, str]]) -> None:
    for subject in AlertEpisode.objects.unresolved().filter(kind=AlertKind.CUTOFF_AT_RISK).values_list("subject", flat=True):
        if subject not in risky:
            alert_resolve(kind=AlertKind.CUTOFF_AT_RISK, subject=subject)
    for subject, (summary, code) in sorted(risky.items()):
        alert_open(kind=AlertKind.CUTOFF_AT_RISK, subject=subject, summary=summary, interface=code)


def _left(cutoff: CutOff, *, at: dt.datetime, now: dt.datetime) -> dict[str, tuple[int, Decimal]]:
    """What was pending at the cut-off ``at`` and is still not completed or failed at ``now``."""
    figures = Transaction.objects.filter(interface_id=cutoff.interface_id).pending_figures(received_before=at, open_after=now)
    return cutoff.pending_of(figures)


def _missed_check(cutoff: CutOff, *, day: dt.date, at: dt.datetime, now: dt.datetime) -> None:
    """At the cut-off, once (the check row is the claim): what is left opens CUTOFF_MISSED per currency."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                check = CutOffCheck.objects.create(cutoff=cutoff, at=at, checked_at=now)
        except IntegrityError:
            return  # another tick, or another cluster, looked first
        missed = {currency: figure for currency, figure in _left(cutoff, at=at, now=at).items() if figure[1] > cutoff.min_value}
        check.missed = {currency: [count, str(value)] for currency, (count, value) in missed.items()}
        check.save(update_fields=["missed"])
        for currency, (count, value) in missed.items():
            alert_open(
                kind=AlertKind.CUTOFF_MISSED, subject=cutoff.subject(day, currency),
                summary=pending_summary(count, value, currency), interface=cutoff.interface.code,
            )


def _missed_follow(cutoffs: dict[str, CutOff], *, now: dt.datetime) -> None:
    left: dict[tuple[int, str], dict[str, tuple[int, Decimal]]] = {}  # one reading per cut-off and day, for all its currencies
    for episode in AlertEpisode.objects.unresolved().filter(kind=AlertKind.CUTOFF_MISSED):
        name, day, currency = episode.subject.split(":", 1)[1].rsplit(":", 2)
        cutoff = cutoffs.get(name)
        done = cutoff is None or episode.state == AlertState.ACKNOWLEDGED
        if not done:
            if (cutoff.id, day) not in left:
                at = cutoff.at_on(dt.date.fromisoformat(day), cutoff.calendar_group.calendar())
                left[cutoff.id, day] = _left(cutoff, at=at, now=now)
            done = currency not in left[cutoff.id, day]
        if done:
            alert_resolve(kind=AlertKind.CUTOFF_MISSED, subject=episode.subject)
