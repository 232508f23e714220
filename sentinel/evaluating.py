"""`sentinel evaluate`: backtest detectors on baselines with injected outbreaks.

Baselines are simulated, or the warehouse's own de-identified history (``syndrome_daily``,
one series per street × syndrome). The same injected counts go to every chosen method and
setting; each is scored (:func:`detectors.evaluation.score_detection`) on the evaluation
period only, after a burn-in that gives the methods their history. The report is a table
(``evaluation.csv``, ``evaluation.md``) and a plot (``evaluation.png``) in the output folder,
with the injected outbreaks in ``outbreaks.csv``. Next to these scores on made-up outbreaks,
the report gives each chosen method's *real* positive predictive value from the alerts it
raised in the warehouse and CDC staff reviewed (:func:`reports.outcomes.detector_outcomes`,
``outcomes.csv`` and a section of ``evaluation.md``).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from detectors.evaluation import (
    OutbreakShape,
    SizeUnit,
    inject_outbreaks,
    score_detection,
    simulate_baselines,
)
from detectors.registry import Method, get_method
from detectors.series import SeriesError, make_series
from reports.outcomes import detector_outcomes
from sentinel.console import progress_bar
from sentinel.errors import UsageError
from sentinel.evaluation_report import (
    TABLE_COLUMNS,
    EvaluationReport,
    print_evaluation,
    write_report,
)
from sentinel.settings import Settings

Baseline = Literal["simulated", "warehouse"]
ParamValues = Mapping[str, str | Sequence[str]]

MIN_HISTORY_DAYS = 28
"""Days of history before the evaluation period the harness insists on, at the least."""
GRID_SEPARATOR = "|"
"""Separates alternative values of one parameter: ``--param ears_c2.alpha=0.001|0.01``."""

__all__ = ["EvaluationReport", "parse_params", "print_evaluation", "run_evaluation"]


@dataclass(frozen=True)
class _Setting:
    method: Method
    label: str
    params: dict[str, object]


@dataclass(frozen=True)
class _Baselines:
    counts: NDArray[np.float64]
    dates: pd.DatetimeIndex
    sd: NDArray[np.float64] | None
    labels: pd.DataFrame | None


def parse_params(pairs: Sequence[str]) -> dict[str, dict[str, str]]:
    """Read ``--param METHOD.KEY=VALUE`` options into ``{method: {key: value}}``.

    A repeated ``METHOD.KEY`` joins its values into a grid (``a|b``), like writing
    ``METHOD.KEY=a|b`` once.
    """
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        method, dot, key = name.strip().partition(".")
        if not sep or not dot or not method or not key:
            raise UsageError(f"--param takes METHOD.KEY=VALUE, got {pair!r}")
        given = out.setdefault(method, {})
        given[key] = f"{given[key]}{GRID_SEPARATOR}{value}" if key in given else value
    return out


def run_evaluation(
    settings: Settings,
    *,
    methods: list[str],
    params: dict[str, dict[str, str]] | None = None,
    baseline: Baseline = "simulated",
    out_dir: Path,
    n_series: int = 200,
    days: int = 6 * 365,
    outbreak_size: float = 3.0,
    outbreak_shape: str = "lognormal",
    outbreak_days: int = 7,
    outbreaks_per_series: int = 1,
    seed: int = 1,
    evaluate_days: int = 365,
    size_unit: str = "sd",
    min_gap: int = 14,
    n_days_after: int = 0,
    target: float = 1.0,
    start: str = "2022-01-03",
    progress: bool = True,
    outcomes: bool = True,
) -> EvaluationReport:
    """Backtest ``methods`` on baselines with injected outbreaks and write the report.

    The intended command line (wired in :mod:`sentinel.cli`)::

        sentinel evaluate --method ears_c2 --method farrington_flexible \\
            --param farrington_flexible.b=3 --param 'ears_c2.alpha=0.001|0.01' \\
            --baseline simulated --series 200 --days 2190 --evaluate-days 365 \\
            --size 3 --size-unit sd --shape lognormal --duration 7 --per-series 1 \\
            --gap 14 --grace 0 --target 1 --seed 1 [--no-outcomes] --out DIR

    ``--baseline`` is ``simulated`` or ``warehouse``, ``--size-unit`` ``sd`` or ``cases``,
    ``--shape`` one of ``flat``, ``linear``, ``lognormal``, ``spike``; ``--param`` is
    repeatable (read with :func:`parse_params`), as is ``--method``. Options map to the
    parameters below: ``--series`` n_series, ``--size`` outbreak_size, ``--shape``
    outbreak_shape, ``--duration`` outbreak_days, ``--per-series`` outbreaks_per_series,
    ``--gap`` min_gap, ``--grace`` n_days_after, ``--out`` out_dir; the others by name.
    The command prints the table with :func:`print_evaluation`.

    Parameters
    ----------
    settings : Settings
        The warehouse baseline reads ``settings.warehouse_dir``.
    methods : list of str
        Registered method names (:func:`detectors.registry.get_method`).
    params : dict, optional
        ``{method: {parameter: value}}``, values as strings (coerced by
        :meth:`Method.resolve`); ``a|b`` gives one setting per value, several grids give
        their product. A method named twice runs once per setting.
    baseline : {"simulated", "warehouse"}
        Simulated negative binomial series (:func:`simulate_baselines`), or the street ×
        syndrome series of the warehouse's ``syndrome_daily``.
    out_dir : Path
        Folder of ``evaluation.csv``, ``evaluation.md``, ``evaluation.png``, ``outbreaks.csv``.
    n_series : int
        Series to simulate; for the warehouse, at most this many series sampled (seeded)
        from all street × syndrome pairs.
    days : int
        Days of each baseline (the warehouse's last ``days`` days, or fewer if it has less).
        The default, 6 years, leaves 5 years of history before the scored year: what
        ``farrington_flexible`` (b = 5) and ``mpm`` (up to 5 years) look back over. Methods
        short of history compute fewer points; ``coverage`` in the table shows it.
    outbreak_size, outbreak_shape, outbreak_days, outbreaks_per_series, size_unit, min_gap
        Passed to :func:`inject_outbreaks` (``size``, ``shape``, ``duration``,
        ``per_series``, ``size_unit``, ``min_gap``).
    seed : int
        Seeds baselines, sampling and injection: the same seed gives the same report.
    evaluate_days : int
        Days scored, at the end; the days before are the burn-in, where no outbreak is
        injected and methods are not evaluated (they are passed ``at=`` these points).
    n_days_after : int
        Grace days after an outbreak (see :func:`score_detection`).
    target : float
        False alarms per 100 series-days a usable setting may raise (``meets_target``).
    start : str
        First date of simulated baselines.
    progress : bool
        Show a progress bar on stderr.
    outcomes : bool
        Also report the real positive predictive value of ``methods`` from the reviewed
        alerts of the warehouse at ``settings.warehouse_dir`` (whatever the baseline); a
        warehouse without reviewed alerts gives one line instead of a table.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    UsageError
        Unknown method or parameter, bad option values, no or too short warehouse history.
    """
    _check_options(
        methods, baseline, n_series, days, evaluate_days, outbreak_shape, size_unit, target
    )
    choices = _choices(methods, params or {})
    rng = np.random.default_rng(seed)
    baseline_rng, injection_rng = rng.spawn(2)
    base = _BASELINES[baseline](settings, n_series, days, evaluate_days, start, baseline_rng)
    n_rows, n_days = base.counts.shape
    first = n_days - evaluate_days
    try:
        injected = inject_outbreaks(
            base.counts,
            injection_rng,
            size=outbreak_size,
            shape=cast(OutbreakShape, outbreak_shape),
            duration=outbreak_days,
            per_series=outbreaks_per_series,
            start_after=first,
            size_unit=cast(SizeUnit, size_unit),
            sd=base.sd,
            min_gap=min_gap,
        )
    except SeriesError as exc:
        raise UsageError(f"cannot inject outbreaks: {exc}") from None
    series = make_series(injected.counts, base.dates)
    at = np.arange(first, n_days)
    in_period = np.zeros(series.counts.shape, dtype=bool)
    in_period[:, first:] = True
    rows = []
    with _progress(progress, len(choices)) as advance:
        for choice in choices:
            started = time.perf_counter()
            try:
                result = choice.method.run(series, choice.params, at=at)
            except SeriesError as exc:
                raise UsageError(f"{choice.method.name} ({choice.label}): {exc}") from None
            computed = np.atleast_2d(result.computed) & in_period
            score = score_detection(
                np.atleast_2d(result.alarm), computed, injected.outbreaks, n_days_after=n_days_after
            )
            rows.append(
                {
                    "method": choice.method.name,
                    "setting": choice.label,
                    **score.as_dict(),
                    "meets_target": bool(score.false_alarms_per_100 <= target),
                    "coverage": round(score.series_days / (n_rows * evaluate_days), 4),
                    "seconds": round(time.perf_counter() - started, 3),
                    "params": "; ".join(f"{k}={v}" for k, v in result.params.items()),
                }
            )
            advance(f"{choice.method.name} {choice.label}")
    table = pd.DataFrame(rows)[list(TABLE_COLUMNS)]
    outbreaks = _describe_outbreaks(injected.outbreaks, base)
    real = detector_outcomes(settings, detectors=methods) if outcomes else None
    return write_report(
        table,
        outbreaks,
        Path(out_dir),
        baseline,
        n_rows,
        n_days,
        evaluate_days,
        target,
        outcomes=real,
    )


def _check_options(
    methods: Sequence[str],
    baseline: str,
    n_series: int,
    days: int,
    evaluate_days: int,
    shape: str,
    size_unit: str,
    target: float,
) -> None:
    if not methods:
        raise UsageError("choose at least one --method")
    if baseline not in _BASELINES:
        raise UsageError(f"--baseline must be one of {', '.join(_BASELINES)}; got {baseline!r}")
    if shape not in get_args(OutbreakShape):
        raise UsageError(
            f"--shape must be one of {', '.join(get_args(OutbreakShape))}; got {shape!r}"
        )
    if size_unit not in get_args(SizeUnit):
        raise UsageError(
            f"--size-unit must be one of {', '.join(get_args(SizeUnit))}; got {size_unit!r}"
        )
    if n_series < 1:
        raise UsageError(f"--series must be at least 1, got {n_series}")
    if evaluate_days < 1:
        raise UsageError(f"--evaluate-days must be at least 1, got {evaluate_days}")
    if days < evaluate_days + MIN_HISTORY_DAYS:
        raise UsageError(
            f"--days {days} leaves too little history: evaluating the last {evaluate_days} "
            f"days needs at least {evaluate_days + MIN_HISTORY_DAYS}"
        )
    if not target >= 0:
        raise UsageError(f"--target must not be negative, got {target}")


def _choices(methods: Sequence[str], params: Mapping[str, ParamValues]) -> list[_Setting]:
    """Every method × parameter grid point, checked before any work starts."""
    unknown = sorted(set(params) - set(methods))
    if unknown:
        raise UsageError(f"--param for {', '.join(unknown)}, which is not a chosen --method")
    out: list[_Setting] = []
    for name in dict.fromkeys(methods):
        try:
            method = get_method(name)
        except SeriesError as exc:
            raise UsageError(str(exc)) from None
        given = params.get(name, {})
        keys = list(given)
        grids = [_alternatives(given[k]) for k in keys]
        for values in itertools.product(*grids):
            raw = dict(zip(keys, values, strict=True))
            try:
                resolved = method.resolve(raw)
            except SeriesError as exc:
                raise UsageError(str(exc)) from None
            label = ", ".join(f"{k}={v}" for k, v in raw.items()) or "defaults"
            out.append(_Setting(method, label, resolved))
    return out


def _alternatives(value: str | Sequence[str]) -> list[str]:
    parts = value.split(GRID_SEPARATOR) if isinstance(value, str) else list(value)
    return [p.strip() for p in parts]


def _simulated(
    settings: Settings,
    n_series: int,
    days: int,
    evaluate_days: int,
    start: str,
    rng: np.random.Generator,
) -> _Baselines:
    sim = simulate_baselines(n_series, days, rng, start=start)
    return _Baselines(sim.counts, sim.dates, sim.sd, None)


def _warehouse(
    settings: Settings,
    n_series: int,
    days: int,
    evaluate_days: int,
    start: str,
    rng: np.random.Generator,
) -> _Baselines:
    from warehouse.store import Warehouse

    root = settings.warehouse_dir
    if not root.is_dir():
        raise UsageError(
            f"no warehouse at {root}: load data first (sentinel ingest, or sentinel demo)"
        )
    frame = Warehouse(root).read_table("syndrome_daily")
    if frame.empty:
        raise UsageError(f"the warehouse at {root} has no syndrome_daily rows to evaluate on")
    counts, dates, labels = pivot_syndrome_daily(frame)
    need = evaluate_days + MIN_HISTORY_DAYS
    if len(dates) < need:
        raise UsageError(
            f"the warehouse holds {len(dates)} days of syndrome_daily "
            f"({dates[0].date()} to {dates[-1].date()}); evaluating {evaluate_days} days needs "
            f"at least {need}: load more history or lower --evaluate-days"
        )
    keep_days = min(days, len(dates))
    counts, dates = counts[:, -keep_days:], dates[-keep_days:]
    if len(labels) > n_series:
        chosen = np.sort(rng.choice(len(labels), size=n_series, replace=False))
        counts, labels = counts[chosen], labels.iloc[chosen].reset_index(drop=True)
    return _Baselines(counts, dates, None, labels)


_BASELINES = {"simulated": _simulated, "warehouse": _warehouse}


def pivot_syndrome_daily(
    frame: pd.DataFrame,
) -> tuple[NDArray[np.float64], pd.DatetimeIndex, pd.DataFrame]:
    """Turn ``syndrome_daily`` rows into street × syndrome daily series.

    Returns
    -------
    counts : ndarray, shape (n_pairs, n_days)
        ``count`` per (street_code, syndrome) and day; NaN on days missing from the table.
    dates : DatetimeIndex
        Every day from the first to the last date in the table.
    labels : DataFrame
        ``street_code, syndrome`` of each row of ``counts``, sorted.
    """
    data = frame.assign(date=pd.to_datetime(frame["date"]))
    wide = data.pivot_table(
        index=["street_code", "syndrome"], columns="date", values="count", aggfunc="sum"
    )
    dates = pd.date_range(data["date"].min(), data["date"].max(), freq="D")
    wide = wide.reindex(columns=dates)
    labels = wide.index.to_frame(index=False)
    return wide.to_numpy(dtype=np.float64, na_value=np.nan), dates, labels


def _describe_outbreaks(outbreaks: pd.DataFrame, base: _Baselines) -> pd.DataFrame:
    out = outbreaks.copy()
    out.insert(3, "start_date", base.dates[out["start"].to_numpy()].date)
    out.insert(4, "end_date", base.dates[out["end"].to_numpy()].date)
    if base.labels is not None:
        labels = base.labels.iloc[out["series"].to_numpy()].reset_index(drop=True)
        out.insert(1, "street_code", labels["street_code"].to_numpy())
        out.insert(2, "syndrome", labels["syndrome"].to_numpy())
    return out


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[str], None]]:
    if not show:
        yield lambda note: None
        return
    with progress_bar() as bar:
        task = bar.add_task("Evaluating", total=total, note="")
        yield lambda note: bar.update(task, advance=1, note=note)
