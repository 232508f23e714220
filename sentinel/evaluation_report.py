"""The backtesting report: table (CSV, Markdown), plot (PNG) and the console summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentinel.console import console
from sentinel.errors import UsageError

EVALUATION_CSV = "evaluation.csv"
EVALUATION_MD = "evaluation.md"
EVALUATION_PNG = "evaluation.png"
OUTBREAKS_CSV = "outbreaks.csv"

TABLE_COLUMNS = (
    "method",
    "setting",
    "sensitivity",
    "false_alarms_per_100",
    "median_delay_days",
    "ppv",
    "meets_target",
    "outbreaks",
    "detected",
    "alarms",
    "false_alarms",
    "series_days",
    "coverage",
    "seconds",
    "params",
)


@dataclass(frozen=True)
class EvaluationReport:
    """What :func:`run_evaluation` produced.

    Attributes
    ----------
    table : DataFrame
        One row per method and setting, columns :data:`TABLE_COLUMNS`: the scores of
        :class:`detectors.evaluation.DetectionScore`, ``meets_target`` (false alarms per
        100 series-days ≤ the target), ``coverage`` (share of the scored series-days the
        method computed), ``seconds`` (run time) and ``params`` (every parameter used).
    outbreaks : DataFrame
        The injected outbreaks (``series, start, end, cases, …``, dates, and for the
        warehouse baseline ``street_code, syndrome``).
    out_dir, csv_path, markdown_path, plot_path, outbreaks_path : Path
    baseline : str
    n_series, n_days, evaluated_days : int
        Series, days of each baseline, days scored (the last ``evaluated_days``).
    """

    table: pd.DataFrame
    outbreaks: pd.DataFrame
    out_dir: Path
    csv_path: Path
    markdown_path: Path
    plot_path: Path
    outbreaks_path: Path
    baseline: str
    n_series: int
    n_days: int
    evaluated_days: int


def write_report(
    table: pd.DataFrame,
    outbreaks: pd.DataFrame,
    out_dir: Path,
    baseline: str,
    n_series: int,
    n_days: int,
    evaluate_days: int,
    target: float,
) -> EvaluationReport:
    """Write the table, the Markdown, the plot and the outbreaks into ``out_dir``."""
    paths = [
        out_dir / name for name in (EVALUATION_CSV, EVALUATION_MD, EVALUATION_PNG, OUTBREAKS_CSV)
    ]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(paths[0], index=False, lineterminator="\n")
        caption = (
            f"Backtest on {n_series} {baseline} series of {n_days} days, the last "
            f"{evaluate_days} scored; target ≤ {target:g} false alarms per 100 series-days."
        )
        paths[1].write_text(f"{caption}\n\n{render_markdown(table)}", encoding="utf-8")
        plot_evaluation(table, paths[2], target=target)
        outbreaks.to_csv(paths[3], index=False, lineterminator="\n")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    return EvaluationReport(
        table=table,
        outbreaks=outbreaks,
        out_dir=out_dir,
        csv_path=paths[0],
        markdown_path=paths[1],
        plot_path=paths[2],
        outbreaks_path=paths[3],
        baseline=baseline,
        n_series=n_series,
        n_days=n_days,
        evaluated_days=evaluate_days,
    )


def render_markdown(table: pd.DataFrame) -> str:
    """The evaluation table as a GitHub Markdown table (rates to 3 digits, NaN as ``n/a``)."""
    columns = [c for c in TABLE_COLUMNS if c != "params"]
    header = "| " + " | ".join(columns) + " |"
    align = "|" + "|".join("---:" if _numeric(table[c]) else "---" for c in columns) + "|"
    lines = [header, align]
    for row in table[columns].itertuples(index=False):
        cells = [_cell(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _cell(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return "n/a" if np.isnan(value) else f"{value:.3f}"
    return str(value).replace("|", "\\|")


def plot_evaluation(table: pd.DataFrame, path: Path, *, target: float = 1.0) -> None:
    """Plot sensitivity against false alarms (left) and median delay (right) to a PNG.

    Uses matplotlib's Agg canvas directly (no pyplot, no display), so it works headless
    and leaves the global backend alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [
        f"{m} ({s})" if s != "defaults" else m
        for m, s in zip(table["method"], table["setting"], strict=True)
    ]
    fig = Figure(figsize=(11, max(3.5, 0.35 * len(table) + 1.5)), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    rate = table["false_alarms_per_100"].to_numpy(dtype=float)
    sens = table["sensitivity"].to_numpy(dtype=float)
    left.scatter(rate, sens, color="tab:blue")
    for x, y, label in zip(rate, sens, labels, strict=True):
        if np.isfinite(x) and np.isfinite(y):
            left.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    left.axvline(target, color="tab:red", linestyle="--", linewidth=1, label=f"target {target:g}")
    left.set_xlabel("false alarms per 100 series-days")
    left.set_ylabel("sensitivity (share of outbreaks detected)")
    left.set_ylim(-0.02, 1.02)
    finite = rate[np.isfinite(rate)]
    # Room on the right for the labels of the points furthest out.
    left.set_xlim(0, max(target, *finite, 0.1) * 1.3)
    left.legend(loc="lower right", fontsize=8)
    delay = table["median_delay_days"].to_numpy(dtype=float)
    positions = np.arange(len(table))
    right.barh(positions, np.nan_to_num(delay, nan=0.0), color="tab:green")
    right.set_yticks(positions, labels, fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("median days from outbreak start to first alarm")
    for y, d in zip(positions, delay, strict=True):
        if not np.isfinite(d):
            right.annotate(
                "none detected",
                (0, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    fig.savefig(path, dpi=110)


def print_evaluation(report: EvaluationReport) -> None:
    """Print the table and where the report went (for the command)."""
    from rich.table import Table

    shown = Table(show_lines=False)
    columns = [
        "method",
        "setting",
        "sensitivity",
        "false_alarms_per_100",
        "median_delay_days",
        "ppv",
        "meets_target",
        "coverage",
    ]
    for column in columns:
        shown.add_column(
            column.replace("_", " "),
            justify="right" if column not in ("method", "setting") else "left",
        )
    for row in report.table[columns].itertuples(index=False):
        shown.add_row(*(_cell(v) for v in row))
    console.print(shown)
    table = report.table
    for method, setting, coverage in zip(
        table["method"], table["setting"], table["coverage"].astype(float), strict=True
    ):
        if coverage < 1:
            console.print(
                f"[yellow]{method} ({setting}) computed {coverage:.0%} of the "
                f"scored series-days: too little history for it (raise --days) or missing days[/]"
            )
    console.print(
        f"{report.n_series} {report.baseline} series × {report.n_days} days, last "
        f"{report.evaluated_days} scored, {len(report.outbreaks)} injected outbreaks. "
        f"Written to [bold]{report.out_dir}[/]: {EVALUATION_CSV}, {EVALUATION_MD}, "
        f"{EVALUATION_PNG}, {OUTBREAKS_CSV}"
    )
