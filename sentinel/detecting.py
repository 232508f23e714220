"""`sentinel detect`: one series from a CSV file, or every series of the warehouse for a day.

Warehouse mode reads ``syndrome_daily`` (street × syndrome) and ``syndrome_age_daily``
(street × syndrome × age group) up to the analysis day — never after it — runs the
configured method per syndrome (``[detect]`` settings), sends sparse series and days the
method cannot compute to the fallback method, and replaces the analysis day's alerts.
Re-running a day gives the same alerts (their ``alert_id``, ``created_at`` and ``status``
are kept).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from detectors.registry import get_method
from detectors.result import DetectorResult
from detectors.series import SeriesError, make_series
from sentinel.detect_settings import DetectorChoice, DetectSettings
from sentinel.errors import UsageError
from sentinel.logs import log_event
from sentinel.settings import Settings
from sentinel.timeseries import SeriesTable, load_series, open_analysis
from warehouse.store import Warehouse

log = logging.getLogger("sentinel.detect")

FillMissing = Literal["error", "zero"]
SPARSE_WINDOW = 28
"""Days before the analysis day whose mean count decides whether a series is sparse."""


# -- one series from a file ------------------------------------------------------------


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=v", …]`` → ``{"k": "v"}``; a pair without ``=`` or a repeated key is an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param takes key=value, got {pair!r}")
        if key.strip() in out:
            raise UsageError(f"--param {key.strip()} given twice")
        out[key.strip()] = value.strip()
    return out


def read_count_csv(path: Path, fill_missing: FillMissing = "error") -> pd.DataFrame:
    """Read ``date,count`` rows, checked: sorted, unique, regular, non-negative.

    Daily rows, or weekly rows 7 days apart. A missing day (a gap, or an empty count) is an
    error unless ``fill_missing="zero"``, which inserts it with count 0.

    Returns
    -------
    DataFrame
        ``date`` (datetime64) and ``count`` (float64), one row per time point.
    """
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--input {path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("date", "count") if c not in raw.columns]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)} (need date,count)")
    if raw.empty:
        raise UsageError(f"{path} has no rows")
    dates = pd.to_datetime(raw["date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        line = int(np.flatnonzero(dates.isna().to_numpy())[0]) + 2
        raise UsageError(f"{path}:{line}: date {raw['date'].iloc[line - 2]!r} is not YYYY-MM-DD")
    text = raw["count"].str.strip()
    counts = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = counts.isna() & (text != "")
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise UsageError(f"{path}:{line}: count {text.iloc[line - 2]!r} is not a number")
    if (counts < 0).any():
        where = dates[counts < 0].iloc[0].date()
        raise UsageError(f"{path}: negative count on {where}")
    steps = np.diff(dates.to_numpy()).astype("timedelta64[D]").astype(np.int64)
    if (steps == 0).any():
        raise UsageError(
            f"{path}: duplicate date {dates.iloc[int(np.flatnonzero(steps == 0)[0]) + 1].date()}"
        )
    if (steps < 0).any():
        raise UsageError(
            f"{path}: dates are not sorted (at {dates.iloc[int(np.flatnonzero(steps < 0)[0]) + 1].date()})"
        )
    step = 7 if len(steps) and steps.min() >= 7 and (steps % 7 == 0).all() else 1
    full = pd.date_range(dates.iloc[0], dates.iloc[-1], freq=f"{step}D")
    frame = pd.DataFrame({"date": dates.to_numpy(), "count": counts.to_numpy(dtype=float)})
    frame = frame.set_index("date").reindex(full).rename_axis("date").reset_index()
    holes = frame["count"].isna()
    if holes.any() and fill_missing != "zero":
        first = frame.loc[holes, "date"].iloc[0].date()
        raise UsageError(
            f"{path}: {int(holes.sum())} missing {'week' if step == 7 else 'day'}(s) "
            f"(first {first}); pass --fill-missing zero to count them as 0"
        )
    frame["count"] = frame["count"].fillna(0.0)
    return frame


def detect_file(
    method: str,
    input_path: Path,
    output_path: Path,
    params: Sequence[str] = (),
    *,
    fill_missing: FillMissing = "error",
    details: bool = False,
) -> DetectorResult:
    """Run one method on a ``date,count`` CSV and write ``date,count,expected,upperbound,alarm``.

    ``alarm`` is 0/1, and empty with ``expected``/``upperbound`` where the method cannot
    compute (not enough history). ``details`` adds ``score`` and ``p_value``.
    """
    try:
        chosen = get_method(method)
        resolved = chosen.resolve(parse_params(params))
    except SeriesError as exc:
        raise UsageError(str(exc)) from None
    frame = read_count_csv(input_path, fill_missing)
    try:
        series = make_series(frame["count"].to_numpy(), pd.DatetimeIndex(frame["date"]))
        result = chosen.run(series, resolved)
    except SeriesError as exc:
        raise UsageError(str(exc)) from None
    out = pd.DataFrame({"date": frame["date"].dt.strftime("%Y-%m-%d")})
    counts = frame["count"]
    out["count"] = counts.astype("int64") if (counts % 1 == 0).all() else counts
    out["expected"] = result.expected
    out["upperbound"] = result.upperbound
    out["alarm"] = pd.array(np.where(result.computed, result.alarm.astype(int), 0), dtype="Int64")
    out.loc[~result.computed, "alarm"] = pd.NA
    if details:
        out["score"] = result.score
        out["p_value"] = result.p_value
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(output_path, index=False, na_rep="")
    except OSError as exc:
        raise UsageError(f"cannot write {output_path}: {exc.strerror}") from None
    return result


# -- every series of the warehouse ------------------------------------------------------


@dataclass(frozen=True)
class DetectionSummary:
    """What a warehouse-mode run did."""

    days: list[dt.date]
    series: int
    alerts: pd.DataFrame
    methods: dict[str, int] = field(default_factory=dict)
    """Series-days evaluated per method label."""
    missing_days: list[dt.date] = field(default_factory=list)


def detect_warehouse(
    settings: Settings,
    first_day: dt.date,
    last_day: dt.date | None = None,
    *,
    now: dt.datetime | None = None,
) -> DetectionSummary:
    """Run the configured detectors for each day in ``first_day … last_day`` and store alerts.

    Each day uses only counts dated on or before it (evaluating several days at once gives
    the same alerts as one run per day). Each day's alerts replace that day's earlier ones;
    an alert found again keeps its ``created_at`` and ``status``.
    """
    frames, summary = compute_alerts(settings, first_day, last_day, now=now)
    # The space-time scan's alerts of these days are its own to replace.
    Warehouse(settings.warehouse_dir).write_alerts_days(frames, replace=is_temporal)
    return summary


def compute_alerts(
    settings: Settings,
    first_day: dt.date,
    last_day: dt.date | None = None,
    *,
    street_prefixes: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> tuple[dict[dt.date, pd.DataFrame], DetectionSummary]:
    """The temporal alerts of each day of ``first_day … last_day``, without storing them.

    ``street_prefixes`` limits the series to streets whose code starts with one of them
    (a shard of a city: the districts' 6-digit prefixes). Series are independent, so the
    shards' alerts together are the alerts of one run over every street.
    """
    wh, last_day = open_analysis(settings.warehouse_dir, first_day, last_day)
    cfg = settings.detect
    table = load_series(
        wh,
        first_day - dt.timedelta(days=cfg.history_days),
        last_day,
        age_groups=cfg.age_groups,
        age_min_daily=cfg.age_group_min_daily,
        street_prefixes=street_prefixes,
    )
    days = [d.date() for d in pd.date_range(first_day, last_day, freq="D")]
    at = np.arange(table.n_days - len(days), table.n_days)
    alerts, used = _run_detectors(table, cfg, at)
    created = now or dt.datetime.now().replace(microsecond=0)
    frames = _alert_frames(alerts, days, wh, created)
    every = pd.concat([f for f in frames.values()], ignore_index=True) if frames else pd.DataFrame()
    log_event(
        log,
        "detect_finished",
        first=first_day,
        last=last_day,
        series=table.n_series,
        alerts=len(every),
        missing_days=len(table.missing_days),
        methods=";".join(f"{k}:{v}" for k, v in sorted(used.items())),
        shard=",".join(street_prefixes) if street_prefixes else "all",
    )
    return frames, DetectionSummary(days, table.n_series, every, used, table.missing_days)


def _run_detectors(
    table: SeriesTable, cfg: DetectSettings, at: np.ndarray
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Alarms of every series at the evaluated indices ``at``, with the method that decided.

    The fallback runs on every series; each syndrome's own method then takes over wherever
    it computed and the series is not sparse.
    """
    counts = table.counts
    sparse = _sparse(counts, at, cfg.sparse_below)
    shape = sparse.shape
    chosen = {k: np.zeros(shape, dtype=bool if k == "alarm" else float) for k in _OUTPUTS}
    label = np.full(shape, "", dtype=object)
    params = np.full(shape, "", dtype=object)
    usable = np.zeros(shape, dtype=bool)
    syndromes = table.keys["syndrome"].to_numpy()
    ages = [a if isinstance(a, str) else None for a in table.keys["age_group"]]
    # Fallbacks first, on every series; then each series' own method where it computed
    # and the series is not sparse.
    fallbacks = [cfg.fallback_for(a) for a in ages]
    mains = [cfg.choice_for(s, a) for s, a in zip(syndromes, ages, strict=True)]
    for picks, is_main in ((fallbacks, False), (mains, True)):
        for choice in sorted(set(picks), key=DetectorChoice.label):
            rows = np.flatnonzero([p == choice for p in picks])
            if (
                is_main
                and choice == fallbacks[rows[0]]
                and all(fallbacks[r] == choice for r in rows)
            ):
                continue  # the fallback already ran with these settings
            out = _run(choice, table, rows, at)
            take = np.zeros(shape, dtype=bool)
            take[rows] = out["computed"] & (~sparse[rows] if is_main else True)
            for key, values in chosen.items():
                full = np.zeros_like(values)
                full[rows] = out[key]
                values[take] = full[take]
            label[take] = choice.label()
            params[take] = _params_json(out["params"])
            usable |= take
    names, n = np.unique(label[usable].astype(str), return_counts=True)
    used = {str(k): int(v) for k, v in zip(names, n, strict=True)}
    hit_series, hit_days = np.nonzero(chosen["alarm"] & usable)
    keys = table.keys.iloc[hit_series].reset_index(drop=True)
    alerts = keys.assign(
        day_index=at[hit_days],
        **{k: chosen[k][hit_series, hit_days] for k in _OUTPUTS if k != "alarm"},
        detector=[m.split("(")[0] for m in label[hit_series, hit_days]],
        params=params[hit_series, hit_days],
    )
    alerts["date"] = table.dates[alerts["day_index"].to_numpy()].date
    return alerts, used


_FIELDS = ("expected", "upperbound", "score", "p_value", "alarm")
_OUTPUTS = (*_FIELDS, "observed")


def _run(
    choice: DetectorChoice, table: SeriesTable, rows: np.ndarray, at: np.ndarray
) -> dict[str, Any]:
    """Run one method on some series; the arrays returned hold only the ``at`` columns."""
    series = make_series(table.counts[rows], table.dates)
    result = get_method(choice.method).run(series, dict(choice.params), at=at)
    out: dict[str, Any] = {
        k: np.atleast_2d(getattr(result, k))[:, at] for k in (*_FIELDS, "computed")
    }
    out["params"] = result.params
    # A method whose bound applies to a window sum reports that sum as what was observed.
    observed = np.atleast_2d(
        result.score if get_method(choice.method).observed == "score" else series.counts
    )
    out["observed"] = observed[:, at]
    return out


def _sparse(counts: np.ndarray, at: np.ndarray, below: float) -> np.ndarray:
    """Whether each series' mean over the SPARSE_WINDOW days before each ``at`` is below ``below``."""
    csum = np.concatenate([np.zeros((counts.shape[0], 1)), np.cumsum(counts, axis=1)], axis=1)
    lo = np.maximum(at - SPARSE_WINDOW, 0)
    width = np.maximum(at - lo, 1)
    means = (csum[:, at] - csum[:, lo]) / width
    return means < below


def _params_json(params: object) -> str:
    return json.dumps(dict(params), sort_keys=True, default=list)  # type: ignore[call-overload]


SCAN_PREFIX = "scan_"
"""Detector names of the space-time scan start with this; every other detector is temporal."""


def is_temporal(detector: str) -> bool:
    """Whether ``detector`` is a temporal method (not the space-time scan)."""
    return not detector.startswith(SCAN_PREFIX)


def severity_of(observed: np.ndarray, upperbound: np.ndarray) -> np.ndarray:
    """Severity from the excess over the bound, comparable across methods.

    high: at least twice the bound (a bound below 1 counts as 1) and at least 5 cases over
    it; medium: 1.5 times, or 3 cases over; low otherwise. (p-values of different methods
    are not comparable, and EARS's alarm already means p < alpha.)
    """
    bound = np.maximum(np.nan_to_num(upperbound, nan=0.0), 1.0)
    excess = observed - np.nan_to_num(upperbound, nan=0.0)
    high = (observed >= 2.0 * bound) & (excess >= 5.0)
    medium = (observed >= 1.5 * bound) | (excess >= 3.0)
    return np.where(high, "high", np.where(medium, "medium", "low"))


def alert_id(
    day: dt.date, syndrome: str, streets: Sequence[str], age_group: str | None, detector: str
) -> str:
    """Stable identifier: the same finding on the same day keeps its id when re-analysed."""
    text = "|".join(
        [day.isoformat(), syndrome, ";".join(sorted(streets)), age_group or "all", detector]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _alert_frames(
    alerts: pd.DataFrame, days: list[dt.date], wh: object, created: dt.datetime
) -> dict[dt.date, pd.DataFrame]:
    from warehouse.store import Warehouse

    assert isinstance(wh, Warehouse)
    earlier = wh.read_dates("alerts", days[0], days[-1]).to_pandas()
    kept = {r.alert_id: (r.created_at, r.status) for r in earlier.itertuples(index=False)}
    frames: dict[dt.date, pd.DataFrame] = {}
    if alerts.empty:
        return {d: pd.DataFrame() for d in days}
    ages = alerts["age_group"].astype(object).where(alerts["age_group"].notna(), None)
    ids = [
        alert_id(d, s, [c], a, m)
        for d, s, c, a, m in zip(
            alerts["date"],
            alerts["syndrome"],
            alerts["street_code"],
            ages,
            alerts["detector"],
            strict=True,
        )
    ]
    rows = pd.DataFrame(
        {
            "alert_id": ids,
            "date": alerts["date"].to_numpy(),
            "syndrome": alerts["syndrome"].to_numpy(),
            "street_codes": [[c] for c in alerts["street_code"]],
            "age_group": ages.to_numpy(),
            "detector": alerts["detector"].to_numpy(),
            "observed": alerts["observed"].to_numpy(float),
            "expected": alerts["expected"].to_numpy(float),
            "upperbound": alerts["upperbound"].to_numpy(float),
            "score": alerts["score"].to_numpy(float),
            "p_value": alerts["p_value"].to_numpy(float),
            "severity": severity_of(
                alerts["observed"].to_numpy(float), alerts["upperbound"].to_numpy(float)
            ),
            "status": [kept.get(i, (None, "new"))[1] for i in ids],
            "created_at": [kept.get(i, (created, None))[0] for i in ids],
            "params": alerts["params"].to_numpy(),
        }
    )
    rows["created_at"] = pd.to_datetime(rows["created_at"])
    for day in days:
        frames[day] = rows[rows["date"] == day].reset_index(drop=True)
    return frames
