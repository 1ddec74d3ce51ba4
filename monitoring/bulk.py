"""``bulk_update`` without the ORM's per-row expressions.

Django's ``QuerySet.bulk_update`` builds one ``When`` expression per row and field and
resolves each, then the database compares every row with every ``WHEN``; for a
thousand rows that costs seconds. This writes ``UPDATE ... SET f = v.columnN FROM
(VALUES ...) AS v WHERE pk = v.column1`` (PostgreSQL, and SQLite 3.33+), a join, with
each value prepared by its field for the database in use.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


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
    updated = 0
    for start in range(0, len(objs), batch_size):
        batch = objs[start : start + batch_size]
        params = []
        for obj in batch:
            obj._prepare_related_fields_for_save(operation_name="rows_update", fields=concrete)
            params += [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns]
        values = ", ".join([f"({first_row})"] + [f"({other_row})"] * (len(batch) - 1))
        sql = f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v WHERE {table}.{quote(meta.pk.column)} = v.column1"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated
