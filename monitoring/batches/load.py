"""Loading arrivals from a file (``manage.py load_arrivals``): JSON, JSON lines or CSV.

Unlike the API, a file loads what it can: a bad row is refused with its line number
and reason, and the good rows are placed, chunk by chunk, through the same service.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from monitoring.batches.services import arrivals_apply

CSV_COLUMNS = ("tenant", "source", "extract_timestamp")


class ArrivalFileError(ValueError):
    """The file as a whole cannot be read."""


@dataclass(frozen=True)
class Row:
    line: int
    item: object  # what the line holds; arrivals_apply says whether it is an arrival
    error: str = ""


@dataclass
class LoadReport:
    applied: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    exceptions: dict[str, int] = field(default_factory=dict)
    stopped_at_line: int | None = None  # a stop signal ended the load before this line

    def __str__(self) -> str:
        extra = ", ".join(f"{name} {count}" for name, count in sorted(self.exceptions.items()))
        text = f"applied {self.applied}, refused {len(self.refused)}" + (f" (exceptions: {extra})" if extra else "")
        if self.stopped_at_line is not None:
            text += f"; stopped before line {self.stopped_at_line}"
        return text


def arrival_rows_read(path: Path) -> list[Row]:
    """Rows with the line each starts on: a JSON array, one JSON object, JSON lines (one object
    a line) or CSV."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArrivalFileError(f"cannot read {path}: {exc}") from None
    head = text.lstrip()[:1]
    if head == "[":
        return list(_json_array_rows(text))
    if head == "{":
        try:  # one arrival object, pretty-printed over several lines
            return [Row(text.count("\n", 0, text.index("{")) + 1, json.loads(text))]
        except json.JSONDecodeError:
            return list(_json_lines_rows(text))
    return list(_csv_rows(text))


def _json_array_rows(text: str) -> Iterator[Row]:
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        position = _skip(text, position, " \t\r\n")
        if text.startswith("]", position):
            return
        try:
            item, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ArrivalFileError(f"line {exc.lineno}: not valid JSON: {exc.msg}") from None
        yield Row(text.count("\n", 0, position) + 1, item)
        position = _skip(text, end, " \t\r\n")
        if text.startswith(",", position):
            position += 1
        elif not text.startswith("]", position):
            raise ArrivalFileError(f"line {text.count(chr(10), 0, position) + 1}: expected ',' or ']' in the JSON array")


def _skip(text: str, position: int, characters: str) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


def _json_lines_rows(text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Row(number, json.loads(line))
        except json.JSONDecodeError as exc:
            yield Row(number, None, f"not valid JSON: {exc.msg}")


def _csv_rows(text: str) -> Iterator[Row]:
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ArrivalFileError(f"line 1: the CSV header lacks {', '.join(missing)} (it needs {', '.join(CSV_COLUMNS)})")
    for record in reader:
        yield Row(reader.line_num, {k: v for k, v in record.items() if k is not None})


def arrivals_load(
    *,
    rows: list[Row],
    chunk_size: int,
    progress: Callable[[int], None] | None = None,
    stopped: Callable[[], bool] | None = None,
) -> LoadReport:
    """Place the good rows in file order, a chunk per transaction; report the refused ones.

    ``stopped`` is asked between chunks: a stop leaves whole chunks loaded, never half of one."""
    report = LoadReport()
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start : start + chunk_size]
        if stopped is not None and stopped():
            report.stopped_at_line = chunk[0].line
            break
        readable = [row for row in chunk if not row.error]
        report.refused += [(row.line, row.error) for row in chunk if row.error]
        results, errors = arrivals_apply(items=[row.item for row in readable], all_or_nothing=False)
        report.refused += [(readable[e.index].line, f"{e.field}: {e.message}") for e in errors]
        for result in results:
            report.applied += 1
            if result.exception:
                report.exceptions[result.exception] = report.exceptions.get(result.exception, 0) + 1
        if progress is not None:
            progress(len(chunk))
    report.refused.sort()
    return report
