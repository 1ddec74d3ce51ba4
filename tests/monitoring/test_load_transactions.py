from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from monitoring.summaries.models import Transaction

pytestmark = pytest.mark.django_db

HEADER = "interface,reference,amount,currency,status,received_at,completed_at\n"


def load(path, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("load_transactions", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_csv_loads_its_good_rows_and_reports_the_refused_ones_by_line(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(
        HEADER
        + "PAYMENT_ORIGINATOR,C-1,10.50,EUR,PENDING,2026-03-02T09:00:00Z,\n"  # line 2
        + "PAYMENT_ORIGINATOR,C-2,-4,EUR,PENDING,2026-03-02T09:00:00Z,\n"  # line 3: negative
        + 'PAYMENT_ORIGINATOR,"C-3\nsecond line",1500,JPY,COMPLETED,2026-03-02T09:00:00Z,2026-03-02T09:05:00Z\n'  # lines 4-5
        + "NO_SUCH,C-4,1.00,EUR,PENDING,2026-03-02T09:00:00Z,\n"  # line 6: unknown interface
        + "PAYMENT_ORIGINATOR,C-1,10.50,EUR,COMPLETED,2026-03-02T09:00:00Z,2026-03-02T09:10:00Z\n"  # line 7: moves C-1 on
        + "PAYMENT_ORIGINATOR,C-1,10.50,EUR,FAILED,2026-03-02T09:00:00Z,2026-03-02T09:10:00Z\n"  # line 8: contradiction
        + "PAYMENT_ORIGINATOR,C-5,1.00,EUR,PENDING,2026-03-02T09:00:00Z,,surplus\n"  # line 9: too many values
    )

    out, err = load(path, "--chunk-size", "3")

    assert "applied 3 rows (created 2, updated 1, unchanged 0), refused 4 rows" in out
    assert err.splitlines() == [
        "refused line 3: amount: must not be negative: -4",
        "refused line 6: interface: unknown interface 'NO_SUCH'",
        "refused line 8: status: FAILED contradicts the recorded status COMPLETED",
        "refused line 9: 8 values for 7 columns",
    ]
    assert dict(Transaction.objects.values_list("reference", "status")) == {"C-1": "COMPLETED", "C-3\nsecond line": "COMPLETED"}


def test_loading_the_same_file_again_changes_nothing(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(HEADER + "".join(
        f"LIQUIDITY_SERVICE,R-{i},{i}.00,USD,COMPLETED,2026-03-02T09:00:00Z,2026-03-02T09:30:00Z\n" for i in range(25)
    ))
    load(path, "--chunk-size", "10")
    before = list(Transaction.objects.values_list("reference", "updated_at"))

    out, err = load(path)

    assert "applied 25 rows (created 0, updated 0, unchanged 25), refused 0 rows" in out and err == ""
    assert list(Transaction.objects.values_list("reference", "updated_at")) == before


def test_a_json_array_reports_the_line_each_refused_object_starts_on(tmp_path):
    items = [
        {"interface": "REPAIR_SERVICE", "reference": "J-1", "amount": 12.10, "currency": "EUR", "status": "PENDING",
         "received_at": "2026-03-02T09:00:00Z"},
        {"interface": "REPAIR_SERVICE", "reference": "J-2", "amount": "1.001", "currency": "EUR", "status": "PENDING",
         "received_at": "2026-03-02T09:00:00Z"},
    ]
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(items, indent=2))  # each object spans 9 lines, the second starts on line 10

    out, err = load(path)

    assert "applied 1 rows" in out and "refused 1 rows" in out
    assert err.strip() == "refused line 10: amount: 1.001 has more decimals than EUR has minor units (2)"
    assert str(Transaction.objects.get().amount.normalize()) == "12.1"  # a JSON number, read exactly


def test_json_lines_refuse_a_broken_line_and_load_the_rest(tmp_path):
    good = {"interface": "REPAIR_SERVICE", "reference": "L-1", "amount": "5", "currency": "CHF", "status": "PENDING",
            "received_at": "2026-03-02T09:00:00Z"}
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n\n" + json.dumps(good | {"reference": "L-2"}) + "\n")

    out, err = load(path)

    assert "applied 2 rows" in out and "refused 1 rows" in out
    assert err.startswith("refused line 2: not valid JSON")


def test_a_json_syntax_error_stops_before_anything_is_loaded(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text('[\n{"interface": "REPAIR_SERVICE", "reference": "OK"},\n{"reference": , "amount": "1"}\n]\n')
    with pytest.raises(CommandError, match="line 3"):
        load(path)
    assert not Transaction.objects.exists()


def test_a_csv_header_without_a_required_column_is_refused(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("interface,reference,amount,status,received_at,colour\nX,Y,1,PENDING,2026-03-02T09:00:00Z,red\n")
    with pytest.raises(CommandError, match="lacks the column currency.*unknown column 'colour'"):
        load(path)


def test_an_unknown_extension_needs_format(tmp_path):
    path = tmp_path / "feed.txt"
    path.write_text(HEADER + "PAYMENT_ORIGINATOR,T-1,1.00,EUR,PENDING,2026-03-02T09:00:00Z,\n")
    with pytest.raises(CommandError, match="--format"):
        load(path)
    out, _ = load(path, "--format", "csv")
    assert "applied 1 rows" in out
