"""The transactions' totals per (interface, status, currency), kept exact as transactions are written.

Every write of transactions (the feed) calls ``transaction_totals_move``
in its own database transaction, so the totals equal a GROUP BY of the table. Retention (``prune``)
leaves them as they are: like every figure of ``/metrics``, they never go down because rows were
pruned (DOMAIN §9). Each call is
one upsert that adds to the stored count and value (``ON CONFLICT ... DO UPDATE``, PostgreSQL and
SQLite alike), its rows in key order so that two feeds wait for each other instead of deadlocking.
The row locks are held until the caller commits: call it last, just before the commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Sum

from monitoring.summaries.models import Transaction, TransactionTotal

# (interface_id, status, currency, amount): one transaction as the totals count it.
Counted = tuple[int, str, str, Decimal]


def transaction_totals_move(*, added: Iterable[Counted] = (), removed: Iterable[Counted] = ()) -> None:
    """Count ``added`` transactions in the totals and take ``removed`` out of them (a status change
    is one of each; a deleted transaction is one removed), in the caller's database transaction."""
    deltas: dict[tuple[int, str, str], list] = defaultdict(lambda: [0, Decimal(0)])
    for sign, rows in ((1, added), (-1, removed)):
        for interface_id, status, currency, amount in rows:
            delta = deltas[(interface_id, status, currency)]
            delta[0] += sign
            delta[1] += sign * amount
    changes = sorted((key, delta) for key, delta in deltas.items() if delta[0] or delta[1])
    if not changes:
        return
    table = connection.ops.quote_name(TransactionTotal._meta.db_table)
    value = TransactionTotal._meta.get_field("value")
    rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(changes))
    params = []
    for (interface_id, status, currency), (count, amount) in changes:
        params += [interface_id, status, currency, count, value.get_db_prep_save(amount, connection)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS t (interface_id, status, currency, count, value) VALUES {rows} "
            "ON CONFLICT (interface_id, status, currency) DO UPDATE "
            "SET count = t.count + excluded.count, value = t.value + excluded.value",
            params,
        )



def transaction_totals_rebuild() -> None:
    """Count the totals again from the whole transactions table: for rows written around the feed
    (a restore, a benchmark's generated rows). One GROUP BY over the table, so not at every scrape."""
    groups = (
        Transaction.objects.values_list("interface_id", "status", "currency")
        .annotate(n=Count("id"), value=Sum("amount"))
        .order_by("interface_id", "status", "currency")
    )
    with transaction.atomic():
        TransactionTotal.objects.all().delete()
        TransactionTotal.objects.bulk_create(
            TransactionTotal(interface_id=i, status=s, currency=c, count=n, value=v) for i, s, c, n, v in groups
        )
