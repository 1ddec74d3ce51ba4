"""``manage.py load_arrivals``: the good rows load, bad ones are reported by line."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from monitoring.batches.models import BatchFile, BatchWindow

pytestmark = pytest.mark.django_db


def load(path, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("load_arrivals", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def gl(make_config, now):
    now("2026-03-03T00:30:00Z")
    return make_config()


def test_csv_loads_good_rows_and_reports_bad_ones_by_line(gl, tmp_path):
    path = tmp_path / "arrivals.csv"
    path.write_text(
        "tenant,source,extract_timestamp,file_name\n"
        "acme,gl_lines,2026-03-02T01:00:00Z,lines.dat\n"
        "acme,nope,2026-03-02T01:00:00Z,x\n"
        "acme,gl_headers,2026-03-02T01:00:00,y\n"
        "acme,gl_headers,2026-03-02T02:00:00Z,headers.dat\n"
    )

    out, err = load(path, "--chunk-size", "2")

    assert out.splitlines() == [
        "line 3: refused: source: no config of tenant 'acme' expects source 'nope'",
        "line 4: refused: extract_timestamp: '2026-03-02T01:00:00' has no time zone offset (add Z or +00:00)",
        "applied 2, refused 2",
    ]
    assert err == ""
    assert BatchWindow.objects.get().status == "COMPLETED"
    assert BatchFile.objects.get(source_name="gl_lines").payload["file_name"] == "lines.dat"


def test_json_array_reports_the_line_of_each_bad_item(gl, tmp_path):
    items = [
        {"tenant": "acme", "source": "gl_lines", "extract_timestamp": "2026-03-02T01:00:00Z"},
        {"tenant": "other", "source": "gl_lines", "extract_timestamp": "2026-03-02T01:00:00Z"},
        {"tenant": "acme", "source": "gl_lines", "extract_timestamp": "2026-03-02T03:00:00Z"},
    ]
    path = tmp_path / "arrivals.json"
    path.write_text(json.dumps(items, indent=2))

    out, err = load(path)

    assert out.splitlines() == ["line 7: refused: tenant: unknown tenant 'other'", "applied 2, refused 1 (exceptions: DUPLICATE 1)"]


def test_json_lines_with_a_broken_line_still_load_the_rest(gl, tmp_path):
    path = tmp_path / "arrivals.jsonl"
    path.write_text(
        '{"tenant": "acme", "source": "gl_lines", "extract_timestamp": "2026-03-02T01:00:00Z"}\n'
        '{"tenant": "acme", "source": \n'
        '{"tenant": "acme", "source": "gl_headers", "extract_timestamp": "2026-03-02T01:00:00Z"}\n'
    )

    out, err = load(path)

    assert out.splitlines()[-1] == "applied 2, refused 1"
    assert out.startswith("line 2: refused: not valid JSON")


def test_csv_without_the_needed_columns_is_refused_whole(gl, tmp_path):
    path = tmp_path / "arrivals.csv"
    path.write_text("tenant,file\nacme,x\n")

    with pytest.raises(CommandError, match="lacks source, extract_timestamp"):
        load(path)
    assert not BatchFile.objects.exists()
