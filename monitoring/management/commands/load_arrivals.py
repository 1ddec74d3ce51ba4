from __future__ import annotations

import signal
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from monitoring.batches.load import ArrivalFileError, arrival_rows_read, arrivals_load
from portal import clock
from portal.lib.loop import StopSignal


class Command(BaseCommand):
    help = (
        "Load file arrivals from a JSON array, JSON lines or CSV file (columns tenant, source, extract_timestamp), "
        "in chunks, placed like POST /api/v1/arrivals/. Bad rows are reported by line and skipped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="the file to load")
        parser.add_argument("--chunk-size", type=int, default=1000, help="arrivals per transaction (default 1000)")
        clock.add_now_argument(parser)

    def handle(self, *args, file: Path, chunk_size: int, **options) -> None:
        clock.apply_now_option(options)
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        try:
            rows = arrival_rows_read(file)
        except ArrivalFileError as exc:
            raise CommandError(str(exc)) from None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        stop = StopSignal()  # a signal stops the load between two chunks
        try:
            report = self.load(rows, chunk_size, stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        # The refused rows are part of the report, with the counts: one output to read.
        for line, reason in report.refused:
            self.stdout.write(f"line {line}: refused: {reason}")
        self.stdout.write(str(report))

    def load(self, rows, chunk_size: int, stop: StopSignal):
        with Progress(
            TextColumn("arrivals"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            disable=not sys.stdout.isatty(), transient=True,
        ) as bar:
            task = bar.add_task("load", total=len(rows))
            return arrivals_load(
                rows=rows, chunk_size=chunk_size, progress=lambda n: bar.advance(task, n), stopped=lambda: stop.stopped
            )
