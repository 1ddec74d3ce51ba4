"""``bulk_create`` and ``bulk_update`` without the ORM's per-value compilation.

Bulk arrivals write ten thousand files and thousands of windows and messages per
request. Django's ``bulk_update`` builds and resolves one ``When`` expression per row
and field, and the database then compares every row with every ``WHEN``; its
``bulk_create`` compiles every value through the SQL compiler. These write the same
statements directly, each value prepared by its own field for the database in use:
``INSERT ... VALUES ... RETURNING pk`` and ``UPDATE ... FROM (VALUES ...)``, a join
(PostgreSQL, and SQLite 3.35+). The outbox's bulk enqueue uses them too, so they live in
the portal rather than in one app.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence

from django.db import DEFAULT_DB_ALIAS, connection, models, transaction
from django.db.models.base import ModelState
from django.db.models.constants import OnConflict

# SQLite takes at most 32,766 parameters per statement.
MAX_PARAMETERS = 30_000


# Field types whose Python values psycopg2 adapts itself, exactly as Django would prepare them.
PASS_THROUGH = (models.BooleanField, models.IntegerField, models.CharField, models.TextField, models.ForeignKey, models.UUIDField)


def preparer(field: models.Field) -> Callable[[object], object]:
    """How a value of ``field`` goes to the database. On PostgreSQL the plain types, aware
    datetimes and JSON skip Django's per-value preparation (a third of a bulk insert's
    time); anything else, and every value on other databases, goes through the field."""
    def prepare(value: object) -> object:
        return field.get_db_prep_save(value, connection)

    if connection.vendor != "postgresql":
        return prepare
    if isinstance(field, PASS_THROUGH):
        return lambda value: value
    if isinstance(field, models.DateTimeField):
        return lambda value: value if value is None or getattr(value, "tzinfo", None) is not None else prepare(value)
    if isinstance(field, models.JSONField):
        return lambda value: None if value is None else json.dumps(value, cls=field.encoder)
    return prepare


def row_instance(model: type[models.Model], names: Sequence[str], values: Sequence) -> models.Model:
    """A saved ``model`` instance holding ``values`` of the fields ``names`` (attnames, as ``values_list`` reads
    them), without ``Model.__init__``: the largest cost of turning many rows into objects. Its other fields
    load on first access, as deferred fields do."""
    instance = model.__new__(model)
    instance.__dict__.update(zip(names, values, strict=True))
    instance._state = ModelState()
    instance._state.adding, instance._state.db = False, DEFAULT_DB_ALIAS
    return instance


def rows_insert(objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> int:
    """Insert new ``objs`` of one model and set their primary keys, or, with
    ``ignore_conflicts``, skip rows a unique constraint refuses (keys then unset)."""
    if not objs:
        return 0
    meta = type(objs[0])._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not (f.primary_key and f.auto_created)]
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None)
    returning = f"RETURNING {quote(meta.pk.column)}" if meta.pk.auto_created and not ignore_conflicts else ""
    head = f"{connection.ops.insert_statement(on_conflict=on_conflict)} {quote(meta.db_table)} ({columns}) VALUES "
    prepares = [(f.attname, preparer(f)) for f in fields]
    batch_size = max(1, MAX_PARAMETERS // len(fields))
    inserted = 0
    for start in range(0, len(objs), batch_size):
        batch = objs[start : start + batch_size]
        params = []
        for obj in batch:
            obj._prepare_related_fields_for_save(operation_name="rows_insert")
            values = obj.__dict__
            params += [prepare(values[attname]) for attname, prepare in prepares]
        with connection.cursor() as cursor:
            cursor.execute(f"{head}{', '.join([row] * len(batch))} {suffix} {returning}", params)
            ids = [r[0] for r in cursor.fetchall()] if returning else []
            inserted += cursor.rowcount if ignore_conflicts else len(batch)
        for obj, pk in zip(batch, ids, strict=False):
            obj.pk = pk
        for obj in batch:
            obj._state.adding, obj._state.db = False, connection.alias
    return inserted


def rows_update(objs: Sequence[models.Model], fields: Sequence[str], *, batch_size: int = 1000) -> int:
    """Write ``fields`` of saved ``objs`` (one statement per batch); returns the rows updated."""
    if not objs or not fields:
        return 0
    meta = type(objs[0])._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    concrete = [meta.get_field(name) for name in fields]
    columns = [meta.pk, *concrete]
    # PostgreSQL types a VALUES column from its rows: typing the first row is enough.
    typed = connection.vendor == "postgresql"
    first_row = ", ".join(f"CAST(%s AS {f.cast_db_type(connection)})" if typed else "%s" for f in columns)
    other_row = ", ".join(["%s"] * len(columns))
    assignments = ", ".join(f"{quote(f.column)} = v.column{i + 2}" for i, f in enumerate(concrete))
    prepares = [(f.attname, preparer(f)) for f in columns]
    # Only relations need the check (a set: Django looks each model field up in it).
    relations = {f for f in concrete if f.is_relation}
    updated = 0
    for start in range(0, len(objs), batch_size):
        batch = objs[start : start + batch_size]
        params = []
        for obj in batch:
            if relations:
                obj._prepare_related_fields_for_save(operation_name="rows_update", fields=relations)
            values = obj.__dict__
            params += [prepare(values[attname]) for attname, prepare in prepares]
        values = ", ".join([f"({first_row})"] + [f"({other_row})"] * (len(batch) - 1))
        sql = f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v WHERE {table}.{quote(meta.pk.column)} = v.column1"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated


def rows_set(model: type[models.Model], pks: Sequence, values: dict[str, object]) -> int:
    """Give the rows of ``model`` with these primary keys the same ``values`` (field name -> value); returns the
    rows updated. ``QuerySet.update`` with ``pk__in`` prepares every key through its field: a tenth of a
    second per ten thousand keys of a relation."""
    if not pks:
        return 0
    meta, quote = model._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in values]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    prepared = [preparer(f)(values[f.name]) for f in fields]
    batch_size = MAX_PARAMETERS - len(fields)
    updated = 0
    for start in range(0, len(pks), batch_size):
        batch = list(pks[start : start + batch_size])
        sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(batch))})"
        with connection.cursor() as cursor:
            cursor.execute(sql, prepared + batch)
            updated += cursor.rowcount
    return updated


def rows_delete(
    queryset: models.QuerySet, *, batch_size: int, children: Callable[[list], models.QuerySet] | None = None
) -> Counter[str]:
    """Delete the rows of ``queryset`` ``batch_size`` ids at a time, each batch in a transaction of its own.

    Bounded: no statement holds more than one batch, and a stop halfway keeps whole
    batches. ``children(ids)`` names rows that must go first (a PROTECT relation); the
    ORM applies the other relations' on_delete rules. Returns the rows deleted per model label.
    """
    deleted: Counter[str] = Counter()
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            if children is not None:
                deleted.update(children(ids).delete()[1])
            deleted.update(queryset.model._base_manager.filter(pk__in=ids).delete()[1])
