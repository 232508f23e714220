"""Daily count series out of the warehouse: street × syndrome, and street × syndrome × age group."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentinel.errors import UsageError
from warehouse.store import Warehouse


@dataclass(frozen=True, eq=False)
class SeriesTable:
    """Counts of many daily series on one calendar.

    Attributes
    ----------
    dates : DatetimeIndex
        Every day from the first to the last, no gaps.
    keys : DataFrame
        One row per series: ``street_code``, ``syndrome``, ``age_group`` (None: all ages).
    counts : ndarray of float64, shape (n_series, n_days)
    missing_days : list of date
        Days without a ``syndrome_daily`` partition (never loaded), counted as zero.
    """

    dates: pd.DatetimeIndex
    keys: pd.DataFrame
    counts: np.ndarray
    missing_days: list[dt.date] = field(default_factory=list)

    @property
    def n_series(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.counts.shape[1])


def open_analysis(
    warehouse_dir: Path, first_day: dt.date, last_day: dt.date | None
) -> tuple[Warehouse, dt.date]:
    """Open the warehouse for analysing ``first_day … last_day`` (default: one day).

    Raises
    ------
    UsageError
        The range is backwards, or no daily counts were loaded up to its last day.
    """
    last = last_day or first_day
    if last < first_day:
        raise UsageError(f"--to {last} is before --date {first_day}")
    wh = Warehouse(warehouse_dir)
    if not any(d <= last for d in wh.partition_dates("syndrome_daily")):
        raise UsageError(
            f"no syndrome_daily data on or before {last} in {warehouse_dir}; "
            "load visits first (sentinel ingest or sentinel demo)"
        )
    return wh, last


def load_series(
    wh: Warehouse,
    first: dt.date,
    last: dt.date,
    *,
    age_groups: bool = True,
    age_min_daily: float = 0.0,
    street_prefixes: Sequence[str] | None = None,
) -> SeriesTable:
    """Read the daily series of ``first … last`` (dates after ``last`` are never read).

    The calendar starts at the later of ``first`` and the first loaded day. Street ×
    syndrome series come from ``syndrome_daily``; with ``age_groups``, street × syndrome ×
    age-group series from ``syndrome_age_daily`` are added where their mean daily count
    over the period reaches ``age_min_daily``. ``street_prefixes`` keeps only streets whose
    code starts with one of them (a shard).
    """
    loaded = [d for d in wh.partition_dates("syndrome_daily") if first <= d <= last]
    start = loaded[0] if loaded else last
    dates = pd.date_range(start, last, freq="D")
    present = set(loaded)
    missing = [d.date() for d in dates if d.date() not in present]
    daily = _in_shard(wh.read_dates("syndrome_daily", start, last).to_pandas(), street_prefixes)
    keys, counts = _pivot(daily, ["street_code", "syndrome"], dates)
    keys["age_group"] = None
    if age_groups:
        aged = _in_shard(
            wh.read_dates("syndrome_age_daily", start, last).to_pandas(), street_prefixes
        )
        age_keys, age_counts = _pivot(aged, ["street_code", "syndrome", "age_group"], dates)
        keep = age_counts.mean(axis=1) >= age_min_daily if len(dates) else np.zeros(0, bool)
        keys = pd.concat([keys, age_keys[keep]], ignore_index=True)
        counts = np.concatenate([counts, age_counts[keep]], axis=0)
    keys = keys[["street_code", "syndrome", "age_group"]].astype(object)
    return SeriesTable(dates, keys.reset_index(drop=True), counts, missing)


def _in_shard(rows: pd.DataFrame, prefixes: Sequence[str] | None) -> pd.DataFrame:
    if prefixes is None:
        return rows
    keep = rows["street_code"].astype(str).str.startswith(tuple(prefixes))
    return rows[keep.to_numpy(dtype=bool)].reset_index(drop=True)


def _pivot(
    rows: pd.DataFrame, by: list[str], dates: pd.DatetimeIndex
) -> tuple[pd.DataFrame, np.ndarray]:
    """Long rows (``by`` + date + count) → sorted keys and a dense (series × day) array."""
    if rows.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in by}), np.zeros((0, len(dates)))
    index = pd.MultiIndex.from_frame(rows[by].astype(str))
    codes, uniques = index.factorize(sort=True)
    day_index = dates.get_indexer(pd.DatetimeIndex(pd.to_datetime(rows["date"])))
    counts = np.zeros((len(uniques), len(dates)))
    ok = day_index >= 0
    np.add.at(counts, (codes[ok], day_index[ok]), rows["count"].to_numpy(dtype=float)[ok])
    keys = pd.MultiIndex.from_tuples(list(uniques), names=by).to_frame(index=False)
    keys.columns = by
    return keys, counts
