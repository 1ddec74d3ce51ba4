from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from monitoring.summaries.services import (
    FIELDS,
    MAX_FEED_ITEMS,
    READ_ONLY_FIELDS,
    FeedReport,
    FeedResult,
    transactions_feed,
)
from portal.lib.loop import StopSignal

FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
REQUIRED_COLUMNS = FIELDS[:-1]  # completed_at may be left out of a CSV of pending transactions

# (line number, item, bytes read so far); an item that could not even be read is
# a str: the reason it is refused.
Row = tuple[int, "dict | str", int]


class Command(BaseCommand):
    help = (
        "Load transactions from FILE (JSON array, JSON Lines or CSV with a header of the API's field names) "
        "in chunks, like POST /api/v1/transactions/: replay-safe, refused rows reported with their line "
        "number and reason while the good rows still load."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=sorted(set(FORMATS.values())), help="default: from the file extension")
        parser.add_argument("--chunk-size", type=int, default=2000, help=f"rows per transaction (1 to {MAX_FEED_ITEMS})")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")

    def handle(self, *args, file: Path, format: str | None, chunk_size: int, no_progress: bool, **options) -> None:
        if not 1 <= chunk_size <= MAX_FEED_ITEMS:
            raise CommandError(f"--chunk-size must be between 1 and {MAX_FEED_ITEMS}")
        fmt = format or FORMATS.get(file.suffix.lower())
        if fmt is None:
            raise CommandError(f"cannot tell the format of {file} from its extension: use --format json, jsonl or csv")
        if not file.is_file():
            raise CommandError(f"{file} is not a readable file")
        with file.open("rb") as handle, Progress(self, total=file.stat().st_size, enabled=not no_progress) as progress:
            totals, stopped_at = self.load(read_rows(handle, fmt), chunk_size, progress)
        counts = ", ".join(f"{result} {totals[result]}" for result in FeedResult)
        self.stdout.write(f"applied {totals['applied']} rows ({counts}), refused {totals['refused']} rows")
        if stopped_at is not None:
            self.stdout.write(f"stopped by a signal after line {stopped_at}; run again to load the rest (replay-safe)")

    def load(self, rows: Iterator[Row], chunk_size: int, progress: Progress) -> tuple[dict, int | None]:
        totals = {"applied": 0, "refused": 0} | {result: 0 for result in FeedResult}
        stop = StopSignal()
        while chunk := list(islice(rows, chunk_size)):
            readable = [(line, item) for line, item, _ in chunk if not isinstance(item, str)]
            refused = [(line, reason) for line, reason, _ in chunk if isinstance(reason, str)]
            report: FeedReport = transactions_feed(items=[item for _, item in readable], partial=True)
            for error in report.errors:
                refused.append((readable[error.index][0], (f"{error.field}: " if error.field else "") + error.message))
            for line, reason in sorted(refused, key=lambda pair: pair[0]):
                progress.refuse(f"line {line}: {reason}")
            totals["refused"] += len({line for line, _ in refused})
            totals["applied"] += report.applied
            for result in FeedResult:
                totals[result] += report.count(result)
            progress.update(chunk[-1][2])
            if stop.stopped:
                return totals, chunk[-1][0]
        return totals, None


class Progress:
    """A rich progress bar on a terminal (by bytes read); refused rows go to stderr either way."""

    def __init__(self, command: BaseCommand, total: int, enabled: bool) -> None:
        self.command = command
        self.total = total
        self.bar = None
        if enabled and command.stdout.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task("loading", total=total)

    def __enter__(self) -> Progress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.update(self.task, completed=self.total)
            self.bar.stop()

    def update(self, position: int) -> None:
        if self.bar:
            self.bar.update(self.task, completed=position)

    def refuse(self, text: str) -> None:
        if self.bar:
            self.bar.console.print(f"refused {text}", markup=False, highlight=False)
        else:
            self.command.stderr.write(f"refused {text}")


def read_rows(handle, fmt: str) -> Iterator[Row]:
    if fmt == "csv":
        return csv_rows(handle)
    if fmt == "jsonl":
        return jsonl_rows(handle)
    return json_rows(handle)


def csv_rows(handle) -> Iterator[Row]:
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    columns = reader.fieldnames or []
    problems = [f"lacks the column {name}" for name in REQUIRED_COLUMNS if name not in columns]
    problems += [f"has an unknown column {name!r}" for name in columns if name not in FIELDS and name not in READ_ONLY_FIELDS]
    if problems:
        raise CommandError("line 1: the CSV header " + ", ".join(problems) + "; nothing was loaded")
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if None in row:
            yield start, f"{len(columns) + len(row[None])} values for {len(columns)} columns", handle.tell()
            continue
        # An empty cell is a missing value (completed_at of a PENDING row).
        yield start, {name: value for name, value in row.items() if value not in (None, "")}, handle.tell()


def jsonl_rows(handle) -> Iterator[Row]:
    decoder = json.JSONDecoder(parse_float=Decimal)
    position = 0
    for number, raw in enumerate(handle, start=1):
        position += len(raw)
        if raw.strip():
            try:
                yield number, decoder.decode(raw.decode("utf-8-sig" if number == 1 else "utf-8")), position
            except ValueError as exc:
                yield number, f"not valid JSON: {exc}", position


def json_rows(handle) -> Iterator[Row]:
    """The items of a JSON array (or one object), each with the line it starts on.

    The whole file is parsed before anything is loaded, so a syntax error stops
    the command with nothing written.
    """
    text = handle.read().decode("utf-8-sig")
    decoder = json.JSONDecoder(parse_float=Decimal)
    position = _skip_space(text, 0)
    if text.startswith("{", position):
        item, end = _decode_at(decoder, text, position)
        return iter([(text.count("\n", 0, position) + 1, item, end)])
    if not text.startswith("[", position):
        raise CommandError(f"line {text.count(chr(10), 0, position) + 1}: a JSON file must hold an array of transactions")
    rows: list[Row] = []
    line, counted_to = 1, 0
    position = _skip_space(text, position + 1)
    while not text.startswith("]", position):
        line += text.count("\n", counted_to, position)
        counted_to = position
        item, position = _decode_at(decoder, text, position)
        rows.append((line, item, position))
        position = _skip_space(text, position)
        if text.startswith(",", position):
            position = _skip_space(text, position + 1)
        elif not text.startswith("]", position):
            raise CommandError(f"line {line + text.count(chr(10), counted_to, position)}: expected , or ] after an item")
    return iter(rows)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _decode_at(decoder: json.JSONDecoder, text: str, position: int) -> tuple[object, int]:
    try:
        return decoder.raw_decode(text, position)
    except json.JSONDecodeError as exc:
        raise CommandError(f"line {exc.lineno}: not valid JSON: {exc.msg}; nothing was loaded") from None
