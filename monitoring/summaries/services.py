"""Feeding transactions (DOMAIN §2): validate a whole feed, then apply it in order.

The API, ``load_transactions`` and the demo data all call ``transactions_feed``.
A feed is replay-safe: the same record, or an older one (PENDING after
COMPLETED), changes nothing and is reported ``unchanged``; a contradiction
(another amount, currency or received-at, COMPLETED then FAILED, another
completed-at) is refused.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q

from monitoring.summaries.currencies import fits_minor_units, is_currency, minor_units
from monitoring.summaries.models import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    MonitoredInterface,
    Transaction,
    TransactionContradiction,
    TransactionStatus,
)
from monitoring.summaries.totals import Counted, transaction_totals_move
from portal import clock, roles
from portal.services import audit_record

log = logging.getLogger(__name__)

MAX_FEED_ITEMS = 10_000
FIELDS = ("interface", "reference", "amount", "currency", "status", "received_at", "completed_at")
# What GET answers besides FIELDS: a listed transaction can be fed back as it is.
READ_ONLY_FIELDS = frozenset({"id", "created_at", "updated_at"})
REFERENCE_MAX_LENGTH = Transaction._meta.get_field("reference").max_length
# Existing references are fetched (and locked) this many at a time.
LOOKUP_CHUNK = 1000
WRITE_BATCH = 1000
# A concurrent feed of the same new reference, or a deadlock between two feeds,
# rolls this feed's writes back; it is then applied again on the new state.
ATTEMPTS = 3

STATUSES = frozenset(TransactionStatus.values)
# ASCII digits only: \d would take every script's digits, and Decimal() reads them all.
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_MAX_INTEGER_DIGITS = AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES
# Sign, digits, point and trailing zeros of the longest amount the column holds, with room to spare.
MAX_AMOUNT_CHARS = 2 * AMOUNT_MAX_DIGITS + 2


class FeedResult(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ItemError:
    """Why one item of a feed is refused: its position, the field and the reason."""

    index: int
    field: str
    message: str
    reference: str = ""

    def as_json(self) -> dict:
        return {"index": self.index, "reference": self.reference, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"item {self.index}" + (f" ({self.reference})" if self.reference else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class FeedRefused(Exception):
    """The feed has bad items; nothing of it was written."""

    def __init__(self, errors: list[ItemError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s), first: {errors[0]}")


@dataclass(frozen=True)
class TransactionRecord:
    """One validated item of a feed."""

    index: int
    interface_id: int
    reference: str
    amount: Decimal
    currency: str
    status: str
    received_at: dt.datetime
    completed_at: dt.datetime | None

    @property
    def key(self) -> tuple[int, str]:
        return (self.interface_id, self.reference)


@dataclass(frozen=True)
class ItemOutcome:
    index: int
    id: int
    reference: str
    result: FeedResult

    def as_json(self) -> dict:
        return {"id": self.id, "reference": self.reference, "result": str(self.result)}


@dataclass
class FeedReport:
    """Per applied item, in order, what happened; and the refused items (partial feeds only)."""

    outcomes: list[ItemOutcome] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)

    def count(self, result: FeedResult) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result == result)

    @property
    def applied(self) -> int:
        return len(self.outcomes)

    @property
    def refused(self) -> int:
        return len({error.index for error in self.errors})


# --- validation of one item (no database) -----------------------------------------


def _parse_amount(raw: object) -> tuple[Decimal | None, str]:
    """A non-negative decimal of at most the column's digits, refused by its length and exponent before any arithmetic.

    ``1e999999999`` as a JSON number would cost seconds of CPU to format and ``1e99999999999`` all
    the memory there is; ``١٢٣`` (Arabic-Indic digits) would be read as 123 by Decimal().
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        kind = "a JSON number with a fraction (floats lose cents)" if isinstance(raw, float) else type(raw).__name__
        return None, f"must be a decimal string such as \"12.50\", not {kind}"
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            return None, f"not a decimal number: {str(raw)[:40]!r}"
        sign, digits, exponent = raw.as_tuple()
        if len(digits) + exponent > _MAX_INTEGER_DIGITS or exponent < -AMOUNT_MAX_DIGITS or len(digits) > MAX_AMOUNT_CHARS:
            return None, f"out of range: {str(raw)[:40]} (at most {_MAX_INTEGER_DIGITS} digits before the point)"
        text = format(raw, "f")
    else:
        text = str(raw)
    if len(text) > MAX_AMOUNT_CHARS:
        return None, f"too long: {text[:40]}... ({len(text)} characters; at most {MAX_AMOUNT_CHARS})"
    if text.startswith("-") and _DECIMAL.fullmatch(text[1:]):
        return None, f"must not be negative: {text}"
    if not _DECIMAL.fullmatch(text):
        return None, f"not a decimal number of ASCII digits: {text[:40]!r}"
    amount = Decimal(text)
    if amount.adjusted() >= _MAX_INTEGER_DIGITS:
        return None, f"too large: {text[:40]} (at most {_MAX_INTEGER_DIGITS} digits before the point)"
    return amount, ""


def _parse_instant(raw: object) -> tuple[dt.datetime | None, str]:
    if not isinstance(raw, str):
        return None, "must be an ISO-8601 date-time string with an offset, e.g. 2026-03-02T10:00:00Z"
    try:
        return clock.parse_instant(raw), ""
    except ValueError as exc:
        return None, str(exc)


def transaction_item_parse(index: int, item: object, interfaces: Mapping[str, int]) -> TransactionRecord | list[ItemError]:
    """Check one item of a feed on its own; the record, or every reason it is refused."""
    if not isinstance(item, Mapping):
        return [ItemError(index, "", "must be a JSON object with the fields " + ", ".join(FIELDS))]
    raw_reference = item.get("reference")
    reference = raw_reference if isinstance(raw_reference, str) else ""
    errors: list[ItemError] = []

    def refuse(name: str, message: str) -> None:
        errors.append(ItemError(index, name, message, reference))

    for name in item:
        if name not in FIELDS and name not in READ_ONLY_FIELDS:
            refuse(str(name), "unknown field (expected " + ", ".join(FIELDS) + ")")
    for name in FIELDS[:-1]:
        if item.get(name) in (None, ""):
            refuse(name, "required")

    interface_id = None
    code = item.get("interface")
    if code not in (None, ""):
        interface_id = interfaces.get(code) if isinstance(code, str) else None
        if interface_id is None:
            refuse("interface", f"unknown interface {code!r}")
    if raw_reference not in (None, "") and (not isinstance(raw_reference, str) or len(raw_reference) > REFERENCE_MAX_LENGTH):
        refuse("reference", f"must be a string of at most {REFERENCE_MAX_LENGTH} characters")
    elif isinstance(raw_reference, str) and "\x00" in raw_reference:
        refuse("reference", "must not contain NUL characters")

    currency = item.get("currency")
    if currency not in (None, "") and not (isinstance(currency, str) and is_currency(currency)):
        refuse("currency", f"unknown ISO 4217 currency {currency!r}")
        currency = None
    amount = None
    if item.get("amount") not in (None, ""):
        amount, problem = _parse_amount(item["amount"])
        if problem:
            refuse("amount", problem)
        elif currency and not fits_minor_units(amount, currency):
            refuse("amount", f"{format(amount, 'f')} has more decimals than {currency} has minor units ({minor_units(currency)})")

    status = item.get("status")
    if status not in (None, "") and (not isinstance(status, str) or status not in STATUSES):
        refuse("status", f"must be PENDING, COMPLETED or FAILED, not {status!r}")
        status = None
    received_at = completed_at = None
    if item.get("received_at") not in (None, ""):
        received_at, problem = _parse_instant(item["received_at"])
        if problem:
            refuse("received_at", problem)
    raw_completed = item.get("completed_at")
    if raw_completed not in (None, ""):
        completed_at, problem = _parse_instant(raw_completed)
        if problem:
            refuse("completed_at", problem)
        elif status == TransactionStatus.PENDING:
            refuse("completed_at", "must be null while the status is PENDING")
        elif received_at and completed_at < received_at:
            refuse("completed_at", f"{raw_completed} is before received_at {item['received_at']}")
    elif status in (TransactionStatus.COMPLETED, TransactionStatus.FAILED):
        refuse("completed_at", f"required when the status is {status}")

    if errors:
        return errors
    return TransactionRecord(index, interface_id, reference, amount, currency, status, received_at, completed_at)


def transaction_items_parse(items: Sequence[object]) -> tuple[list[TransactionRecord], list[ItemError]]:
    interfaces = dict(MonitoredInterface.objects.values_list("code", "id"))
    records: list[TransactionRecord] = []
    errors: list[ItemError] = []
    for index, item in enumerate(items):
        parsed = transaction_item_parse(index, item, interfaces)
        if isinstance(parsed, TransactionRecord):
            records.append(parsed)
        else:
            errors += parsed
    return records, errors


# --- applying a feed ----------------------------------------------------------------


def transactions_feed(*, items: Sequence[object], partial: bool = False) -> FeedReport:
    """Validate every item, then apply them in order in one database transaction.

    ``partial=False`` (the API): any bad item refuses the whole feed with
    ``FeedRefused`` and nothing is written. ``partial=True`` (the loader): bad
    items are reported in ``FeedReport.errors`` and the good ones applied.
    """
    if len(items) > MAX_FEED_ITEMS:
        raise FeedRefused([ItemError(MAX_FEED_ITEMS, "", f"at most {MAX_FEED_ITEMS:,} transactions per feed, got {len(items):,}")])
    records, errors = transaction_items_parse(items)
    if errors and not partial:
        raise FeedRefused(errors)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                outcomes, contradictions = _apply(records, partial=partial)
            break
        except (IntegrityError, OperationalError) as exc:
            if attempt == ATTEMPTS or not _is_race(exc):
                raise
            log.info("transactions: concurrent feed of the same references, applying again (%s)", exc)
    return FeedReport(outcomes=outcomes, errors=sorted(errors + contradictions, key=lambda e: e.index))


def _is_race(exc: Exception) -> bool:
    """A unique violation (another feed created the reference first) or a PostgreSQL deadlock between two feeds."""
    return isinstance(exc, IntegrityError) or getattr(exc.__cause__, "pgcode", None) == "40P01"


def _apply(records: list[TransactionRecord], *, partial: bool) -> tuple[list[ItemOutcome], list[ItemError]]:
    now = clock.now()
    state = _existing_transactions({record.key for record in records})
    status_before = {row.pk: row.status for row in state.values()}
    created: dict[tuple[int, str], Transaction] = {}
    changed: dict[int, Transaction] = {}
    applied: list[tuple[TransactionRecord, Transaction, FeedResult]] = []
    contradictions: list[ItemError] = []
    for record in records:
        current = state.get(record.key)
        if current is None:
            current = Transaction.from_feed(
                interface_id=record.interface_id,
                reference=record.reference,
                amount=record.amount,
                currency=record.currency,
                status=record.status,
                received_at=record.received_at,
                completed_at=record.completed_at,
                now=now,
            )
            state[record.key] = created[record.key] = current
            applied.append((record, current, FeedResult.CREATED))
            continue
        try:
            result = current.apply_feed(
                amount=record.amount,
                currency=record.currency,
                status=record.status,
                received_at=record.received_at,
                completed_at=record.completed_at,
            )
        except TransactionContradiction as exc:
            contradictions.append(ItemError(record.index, exc.field, exc.message, record.reference))
            continue
        if result == FeedResult.UPDATED and current.pk is not None:
            current.updated_at = now
            changed[current.pk] = current
        applied.append((record, current, FeedResult(result)))
    if contradictions and not partial:
        raise FeedRefused(contradictions)
    # Inserting in key order makes two feeds that race on the same references
    # wait for each other in the same order instead of deadlocking.
    _insert(sorted(created.values(), key=_key))
    _update_finished(sorted(changed.values(), key=lambda row: row.pk), now)
    transaction_totals_move(
        added=[_counted(row, row.status) for row in [*created.values(), *changed.values()]],
        removed=[_counted(row, status_before[row.pk]) for row in changed.values()],
    )
    outcomes = [ItemOutcome(record.index, row.pk, record.reference, result) for record, row, result in applied]
    return outcomes, contradictions


_INSERT_COLUMNS = (
    "interface_id", "reference", "amount", "currency", "status", "received_at", "completed_at", "created_at", "updated_at"
)


def _insert(rows: list[Transaction]) -> None:
    """Insert new transactions and set their ids.

    On PostgreSQL, one multi-row INSERT ... RETURNING per batch with the values
    as they are (validated already): Django's bulk_create spends most of its
    time preparing each field of each row, which halves the feed's speed.
    """
    if connection.vendor != "postgresql":
        Transaction.objects.bulk_create(rows, batch_size=WRITE_BATCH)
        return
    table = connection.ops.quote_name(Transaction._meta.db_table)
    placeholders = "(" + ", ".join(["%s"] * len(_INSERT_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), WRITE_BATCH):
            batch = rows[start : start + WRITE_BATCH]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(_INSERT_COLUMNS)}) VALUES {', '.join([placeholders] * len(batch))} RETURNING id",
                [getattr(row, column) for row in batch for column in _INSERT_COLUMNS],
            )
            for row, (pk,) in zip(batch, cursor.fetchall(), strict=True):
                row.pk = pk
                row._state.adding = False


def _update_finished(rows: list[Transaction], now: dt.datetime) -> None:
    """Store the new status and completed-at of transactions that moved forward.

    On PostgreSQL, one UPDATE ... FROM (VALUES ...) per batch: bulk_update's
    CASE WHEN id = ... per row grows quadratically with the batch.
    """
    if connection.vendor != "postgresql":
        Transaction.objects.bulk_update(rows, ["status", "completed_at", "updated_at"], batch_size=WRITE_BATCH)
        return
    table = connection.ops.quote_name(Transaction._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), WRITE_BATCH):
            batch = rows[start : start + WRITE_BATCH]
            cursor.execute(
                f"UPDATE {table} AS t SET status = v.status, completed_at = v.completed_at, updated_at = %s "
                f"FROM (VALUES {', '.join(['(%s, %s, %s::timestamptz)'] * len(batch))}) AS v(id, status, completed_at) "
                "WHERE t.id = v.id",
                [now] + [value for row in batch for value in (row.pk, row.status, row.completed_at)],
            )


def _counted(row: Transaction, status: str) -> Counted:
    return (row.interface_id, status, row.currency, row.amount)


def _key(row: Transaction) -> tuple[int, str]:
    return (row.interface_id, row.reference)


def _existing_transactions(keys: set[tuple[int, str]]) -> dict[tuple[int, str], Transaction]:
    """The stored transactions of these references, locked until the feed commits."""
    by_interface: dict[int, list[str]] = {}
    for interface_id, reference in sorted(keys):
        by_interface.setdefault(interface_id, []).append(reference)
    found: dict[tuple[int, str], Transaction] = {}
    for interface_id, references in by_interface.items():
        for start in range(0, len(references), LOOKUP_CHUNK):
            chunk = references[start : start + LOOKUP_CHUNK]
            rows = Transaction.objects.select_for_update().filter(Q(interface_id=interface_id, reference__in=chunk))
            for row in rows.order_by("reference"):
                found[_key(row)] = row
    return found


# --- monitored interfaces ------------------------------------------------------------


def interface_save(*, actor, interface: MonitoredInterface) -> MonitoredInterface:
    """Create or change a monitored interface, validated and audited."""
    roles.require(actor, roles.ADMINISTRATORS, "changing an interface")
    fields = ["code", "name", "direction", "inbound_channel", "outbound_channel"]
    interface.full_clean()
    with transaction.atomic():
        old = MonitoredInterface.objects.filter(id=interface.id).values(*fields).first() if interface.id else None
        interface.save()
        audit_record(
            actor=actor,
            action="interface.update" if old else "interface.create",
            obj=interface,
            before=old,
            after={name: getattr(interface, name) for name in fields},
        )
    return interface
