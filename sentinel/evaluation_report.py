"""The backtesting report: table (CSV, Markdown), plot (PNG) and the console summary.

Next to the backtest, the report can show each detector's *real* positive predictive value
from the alerts CDC staff reviewed (:func:`reports.outcomes.detector_outcomes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reports.outcomes import ALL_SYNDROMES, OUTCOME_COLUMNS
from sentinel.console import console
from sentinel.errors import UsageError

EVALUATION_CSV = "evaluation.csv"
EVALUATION_MD = "evaluation.md"
EVALUATION_PNG = "evaluation.png"
OUTBREAKS_CSV = "outbreaks.csv"
OUTCOMES_CSV = "outcomes.csv"

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
    outcomes : DataFrame or None
        Real outcomes of the evaluated detectors' reviewed alerts
        (:func:`reports.outcomes.detector_outcomes`); ``None`` when not asked for.
    outcomes_path : Path or None
        ``outcomes.csv``, written only when some episode has been reviewed (closed).
    outcomes_note : str
        One line on the real outcomes: what the table covers, or why there is none.
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
    outcomes: pd.DataFrame | None = None
    outcomes_path: Path | None = None
    outcomes_note: str = ""


def write_report(
    table: pd.DataFrame,
    outbreaks: pd.DataFrame,
    out_dir: Path,
    baseline: str,
    n_series: int,
    n_days: int,
    evaluate_days: int,
    target: float,
    outcomes: pd.DataFrame | None = None,
) -> EvaluationReport:
    """Write the table, the Markdown, the plot and the outbreaks into ``out_dir``.

    With ``outcomes`` (:func:`reports.outcomes.detector_outcomes`), the Markdown gets a
    section on the real positive predictive value, and ``outcomes.csv`` is written when
    some episode has been reviewed; otherwise the section is one line saying why there
    is no table, and an ``outcomes.csv`` left by an earlier run in ``out_dir`` is removed
    so it cannot be mistaken for this run's.
    """
    paths = [
        out_dir / name for name in (EVALUATION_CSV, EVALUATION_MD, EVALUATION_PNG, OUTBREAKS_CSV)
    ]
    reviewed = outcomes is not None and has_reviewed(outcomes)
    outcomes_path = out_dir / OUTCOMES_CSV if reviewed else None
    note = outcomes_note(outcomes) if outcomes is not None else ""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(paths[0], index=False, lineterminator="\n")
        caption = (
            f"Backtest on {n_series} {baseline} series of {n_days} days, the last "
            f"{evaluate_days} scored; target ≤ {target:g} false alarms per 100 series-days."
        )
        markdown = f"{caption}\n\n{render_markdown(table)}"
        if outcomes is not None:
            markdown += f"\n## Real positive predictive value (reviewed alerts)\n\n{note}\n"
            if reviewed:
                markdown += f"\n{render_outcomes_markdown(outcomes)}"
        paths[1].write_text(markdown, encoding="utf-8")
        plot_evaluation(table, paths[2], target=target)
        outbreaks.to_csv(paths[3], index=False, lineterminator="\n")
        if outcomes is not None and outcomes_path is not None:
            outcomes.to_csv(outcomes_path, index=False, lineterminator="\n")
        elif outcomes is not None:
            (out_dir / OUTCOMES_CSV).unlink(missing_ok=True)
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
        outcomes=outcomes,
        outcomes_path=outcomes_path,
        outcomes_note=note,
    )


def has_reviewed(outcomes: pd.DataFrame) -> bool:
    """Whether any episode in an outcomes table has been reviewed (closed)."""
    closed = outcomes[["true_outbreaks", "false_alarms", "undetermined"]].to_numpy().sum()
    return bool(closed > 0)


def outcomes_note(outcomes: pd.DataFrame) -> str:
    """One line on an outcomes table: what it counts, or why it is empty."""
    if outcomes.empty:
        return "No alerts of these detectors in the warehouse, so no real PPV yet."
    totals = outcomes[outcomes["syndrome"] == ALL_SYNDROMES]
    episodes = int(totals["episodes"].sum())
    if not has_reviewed(outcomes):
        return (
            f"None of the {episodes} alert episodes of these detectors in the warehouse "
            "has been reviewed (closed) yet, so no real PPV yet."
        )
    return (
        f"Over {episodes} alert episodes in the warehouse (continuing alerts counted once): "
        "PPV = true outbreaks / (true outbreaks + false alarms) among closed episodes, "
        "95 % Clopper–Pearson interval; undetermined and open (not yet reviewed) episodes "
        "are counted apart."
    )


def render_outcomes_markdown(outcomes: pd.DataFrame) -> str:
    """The outcomes table as a GitHub Markdown table (PPV to 3 digits, NaN as ``n/a``)."""
    return _markdown(outcomes, list(OUTCOME_COLUMNS))


def render_markdown(table: pd.DataFrame) -> str:
    """The evaluation table as a GitHub Markdown table (rates to 3 digits, NaN as ``n/a``)."""
    return _markdown(table, [c for c in TABLE_COLUMNS if c != "params"])


def _markdown(table: pd.DataFrame, columns: list[str]) -> str:
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
    written = [EVALUATION_CSV, EVALUATION_MD, EVALUATION_PNG, OUTBREAKS_CSV]
    if report.outcomes is not None:
        _print_outcomes(report.outcomes, report.outcomes_note)
        if report.outcomes_path is not None:
            written.append(OUTCOMES_CSV)
    console.print(
        f"{report.n_series} {report.baseline} series × {report.n_days} days, last "
        f"{report.evaluated_days} scored, {len(report.outbreaks)} injected outbreaks. "
        f"Written to [bold]{report.out_dir}[/]: {', '.join(written)}"
    )


def _print_outcomes(outcomes: pd.DataFrame, note: str) -> None:
    """The detectors' totals of real outcomes, or the one line saying there are none."""
    if not has_reviewed(outcomes):
        console.print(f"Real PPV: {note}")
        return
    from rich.table import Table

    shown = Table(title="Real PPV from reviewed alerts (episodes)", show_lines=False)
    columns = [c for c in OUTCOME_COLUMNS if c != "syndrome"]
    for column in columns:
        shown.add_column(
            column.replace("_", " "), justify="left" if column == "detector" else "right"
        )
    totals = outcomes[outcomes["syndrome"] == ALL_SYNDROMES]
    for row in totals[columns].itertuples(index=False):
        shown.add_row(*(_cell(v) for v in row))
    console.print(shown)
    console.print(f"{note} Per syndrome: {OUTCOMES_CSV}.")
