"""What the command prints: progress bars, tables and summaries (rich)."""

from __future__ import annotations

import io
import sys
from typing import Literal

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sentinel.simulator.records import DayBatch
from sentinel.simulator.run import SimulationOptions, SimulationSummary, check_options, simulate

console = Console(highlight=False)


def progress_bar() -> Progress:
    """The progress bar used for long work (to stderr, so stdout stays clean for data)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )


def simulate_with_progress(opts: SimulationOptions) -> SimulationSummary:
    """Run the simulator with a progress bar and print what was written."""
    check_options(opts)  # before the bar: bad usage prints one line, nothing else
    with progress_bar() as bar:
        task = bar.add_task("Simulating", total=opts.days, note="")

        def on_day(i: int, total: int, batch: DayBatch) -> None:
            bar.update(task, advance=1, note=f"{batch.day} · {len(batch.visits):,} visits")

        summary = simulate(opts, on_day)
    console.print(
        f"Simulated [bold]{opts.days}[/] days from {opts.start} ({opts.scale}, seed {opts.seed}): "
        f"{summary.visits:,} visits in {summary.streets} streets at {summary.facilities} facilities, "
        f"{summary.corrections:,} later corrections, {summary.outbreaks} injected outbreaks "
        f"({summary.outbreak_visits:,} outbreak visits)."
    )
    console.print(
        f"Written to [bold]{opts.out}[/]: {', '.join(opts.formats)}, ground_truth.csv, facility_events.csv"
    )
    return summary


def print_frame(frame: pd.DataFrame, fmt: Literal["table", "csv", "json"]) -> None:
    """Print a query result as a table, CSV or JSON lines."""
    if fmt == "csv":
        buf = io.StringIO()
        frame.to_csv(buf, index=False, lineterminator="\n")
        sys.stdout.write(buf.getvalue())
    elif fmt == "json":
        sys.stdout.write(
            frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
        )
    else:
        table = Table(show_lines=False)
        for col in frame.columns:
            table.add_column(str(col))
        for row in frame.itertuples(index=False):
            table.add_row(*("" if _missing(v) else str(v) for v in row))
        console.print(table)
        console.print(f"({len(frame):,} rows)")


def _missing(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
