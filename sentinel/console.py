"""What the command prints: progress bars, tables and summaries (rich)."""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING, Literal

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sentinel.simulator.records import DayBatch

if TYPE_CHECKING:
    from sentinel.cluster_scan import ScanSummary
    from sentinel.detecting import DetectionSummary
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


def print_alerts(summary: DetectionSummary, limit: int = 30) -> None:
    """Summarise a warehouse detection run: methods used and the alerts, most severe first."""
    days = summary.days
    span = str(days[0]) if len(days) == 1 else f"{days[0]} … {days[-1]}"
    used = ", ".join(f"{k} ({v:,} series-days)" for k, v in summary.methods.items())
    console.print(f"Detection for {span}: {summary.series:,} series; methods: {used or 'none'}")
    if summary.missing_days:
        console.print(
            f"[yellow]{len(summary.missing_days)} day(s) of history were never loaded "
            f"(counted as zero), e.g. {summary.missing_days[0]}[/]"
        )
    alerts = summary.alerts
    console.print(f"[bold]{len(alerts):,}[/] alert(s) written.")
    if alerts.empty:
        return
    order = {"high": 0, "medium": 1, "low": 2}
    shown = alerts.assign(
        rank=alerts["severity"].map(order), excess=alerts["observed"] - alerts["upperbound"]
    ).sort_values(["rank", "excess"], ascending=[True, False])
    table = Table(title="Alerts (most severe first)")
    for col in ("date", "syndrome", "street", "age", "method", "obs", "exp", "bound", "sev"):
        table.add_column(col, justify="right" if col in ("obs", "exp", "bound") else "left")
    for r in shown.head(limit).to_dict("records"):
        age = r["age_group"]
        table.add_row(
            str(r["date"]), str(r["syndrome"])[:12], ";".join(r["street_codes"]),
            age if isinstance(age, str) else "all", str(r["detector"]), f"{r['observed']:g}",
            f"{r['expected']:.1f}", f"{r['upperbound']:.1f}", str(r["severity"]),
        )  # fmt: skip
    console.print(table)
    if len(alerts) > limit:
        console.print(f'… and {len(alerts) - limit:,} more: sentinel sql "SELECT * FROM alerts"')


def print_clusters(summary: ScanSummary, limit: int = 20) -> None:
    """Summarise a warehouse scan: scans run, clusters found, alerts with their announcement."""
    days = summary.days
    span = str(days[0]) if len(days) == 1 else f"{days[0]} … {days[-1]}"
    console.print(
        f"Space-time scan for {span}: {summary.scans:,} scans ({len(summary.syndromes)} "
        f"syndromes), {len(summary.clusters):,} clusters, [bold]{len(summary.alerts):,}[/] "
        "alert(s) at the recurrence threshold."
    )
    alerts = summary.alerts
    if alerts.empty:
        return
    table = Table(title="Space-time clusters (alerts)")
    for col in ("date", "syndrome", "streets", "window", "obs", "exp", "RI days", "state"):
        table.add_column(col, justify="right" if col in ("obs", "exp", "RI days") else "left")
    shown = alerts.sort_values(["date", "recurrence_interval_days"], ascending=[True, False])
    for r in shown.head(limit).to_dict("records"):
        table.add_row(
            str(r["date"]), str(r["syndrome"])[:12], str(len(r["street_codes"])),
            f"{str(r['window_start'])[5:]}→{str(r['date'])[5:]}", f"{r['observed']:g}",
            f"{r['expected']:.1f}", f"{r['recurrence_interval_days']:,.0f}", str(r["announcement"]),
        )  # fmt: skip
    console.print(table)
