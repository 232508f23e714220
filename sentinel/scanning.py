"""`sentinel scan` in file mode: CASES and GEO CSV files in, a CLUSTERS CSV file out.

The command line (contract)::

    sentinel scan --cases CASES.csv --geo GEO.csv --end-date D [--start-date D0]
                  [--model permutation|poisson] [--max-days 7] [--max-radius-km R]
                  [--max-size-pct P] [--reps 999] [--seed S] --output CLUSTERS.csv

calls :func:`scan_files`. Every problem with the input is a :class:`UsageError` naming it
(the command exits 2 with that line), and then nothing is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geo.scan import ScanInputError, scan_space_time
from sentinel.errors import UsageError

__all__ = ["CLUSTER_COLUMNS", "FileCluster", "read_cases_csv", "read_geo_csv", "scan_files"]

CLUSTER_COLUMNS = (
    "cluster", "location_ids", "start_date", "end_date", "observed", "expected", "llr",
    "p_value", "recurrence_interval_days", "relative_risk", "radius_km", "centre",
)  # fmt: skip
"""CLUSTERS columns: the contract's nine, then relative risk, radius and centre."""


@dataclass(frozen=True)
class FileCluster:
    """One row of CLUSTERS: a cluster with calendar dates and location ids."""

    cluster: int
    """Rank: 1 is the most likely cluster."""
    location_ids: tuple[str, ...]
    start_date: dt.date
    end_date: dt.date
    observed: int
    expected: float
    llr: float
    p_value: float
    recurrence_interval_days: float
    relative_risk: float
    radius_km: float
    centre: str


def _read(path: Path, option: str, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{option} {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{option} {path} is a folder, not a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(
            f"{path}: missing column(s) {', '.join(missing)} (need {','.join(columns)})"
        )
    return frame.apply(lambda col: col.str.strip())


def _numbers(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | ~np.isfinite(values)
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise UsageError(
            f"{path}:{line}: {column} {frame[column].iloc[line - 2]!r} is not a number"
        )
    return values


def read_cases_csv(path: Path) -> pd.DataFrame:
    """CASES rows ``location_id,date,count``, checked.

    Returns
    -------
    DataFrame
        ``location_id`` (str), ``date`` (datetime.date), ``count`` (int); several rows of
        one location and day add up, as in SaTScan's case file.
    """
    raw = _read(path, "--cases", ("location_id", "date", "count"))
    if raw.empty:
        raise UsageError(f"{path} has no rows: there are no cases to scan")
    if (raw["location_id"] == "").any():
        line = int(np.flatnonzero((raw["location_id"] == "").to_numpy())[0]) + 2
        raise UsageError(f"{path}:{line}: empty location_id")
    dates = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        line = int(np.flatnonzero(dates.isna().to_numpy())[0]) + 2
        raise UsageError(f"{path}:{line}: date {raw['date'].iloc[line - 2]!r} is not YYYY-MM-DD")
    counts = _numbers(raw, "count", path)
    if (counts < 0).any():
        line = int(np.flatnonzero((counts < 0).to_numpy())[0]) + 2
        raise UsageError(f"{path}:{line}: negative count {raw['count'].iloc[line - 2]}")
    if (counts % 1 != 0).any():
        line = int(np.flatnonzero((counts % 1 != 0).to_numpy())[0]) + 2
        raise UsageError(
            f"{path}:{line}: count {raw['count'].iloc[line - 2]} is not a whole number"
        )
    return pd.DataFrame(
        {"location_id": raw["location_id"], "date": dates.dt.date, "count": counts.astype("int64")}
    )


def read_geo_csv(path: Path, *, need_population: bool = False) -> pd.DataFrame:
    """GEO rows ``location_id,x,y`` (km) or ``location_id,lat,lon``, plus ``population``.

    Returns
    -------
    DataFrame
        ``location_id`` and either ``x, y`` or ``lat, lon`` (float), and ``population``
        (float) when the file has it, in file order.
    """
    raw = _read(path, "--geo", ("location_id",))
    pairs = [p for p in (("x", "y"), ("lat", "lon")) if set(p) <= set(raw.columns)]
    if len(pairs) != 1:
        found = "both x,y and lat,lon" if pairs else "neither x,y nor lat,lon"
        raise UsageError(f"{path}: coordinates must be x,y (km) or lat,lon; found {found}")
    if raw.empty:
        raise UsageError(f"{path} has no locations")
    ids = raw["location_id"]
    if (ids == "").any():
        raise UsageError(
            f"{path}:{int(np.flatnonzero((ids == '').to_numpy())[0]) + 2}: empty location_id"
        )
    duplicated = sorted(set(ids[ids.duplicated()]))
    if duplicated:
        raise UsageError(f"{path}: duplicate location_id {', '.join(duplicated[:5])}")
    out = pd.DataFrame({"location_id": ids})
    for column in pairs[0]:
        out[column] = _numbers(raw, column, path).to_numpy(float)
    if "lat" in out and ((out["lat"].abs() > 90).any() or (out["lon"].abs() > 180).any()):
        raise UsageError(f"{path}: lat must lie in [-90, 90] and lon in [-180, 180]")
    if "population" in raw.columns:
        pop = _numbers(raw, "population", path)
        if (pop < 0).any():
            raise UsageError(f"{path}: negative population for {ids[pop < 0].iloc[0]}")
        out["population"] = pop.to_numpy(float)
    elif need_population:
        raise UsageError(f"{path}: the poisson model needs a population column")
    return out


def _table(
    cases: pd.DataFrame, geo: pd.DataFrame, start: dt.date, end: dt.date, path: Path
) -> np.ndarray:
    unknown = sorted(set(cases["location_id"]) - set(geo["location_id"]))
    if unknown:
        more = " …" if len(unknown) > 5 else ""
        raise UsageError(f"{path}: location_id not in --geo: {', '.join(unknown[:5])}{more}")
    outside = cases[(cases["date"] < start) | (cases["date"] > end)]
    if not outside.empty:
        first = outside.iloc[0]
        raise UsageError(
            f"{path}: {first['location_id']} on {first['date']} is outside the study period "
            f"{start} … {end}"
        )
    row = pd.Index(geo["location_id"]).get_indexer(pd.Index(cases["location_id"]))
    day = np.array([(d - start).days for d in cases["date"]], dtype=np.intp)
    table = np.zeros((len(geo), (end - start).days + 1), dtype=np.int64)
    np.add.at(table, (row, day), cases["count"].to_numpy(np.int64))
    if table.sum() == 0:
        raise UsageError(f"{path}: no cases in the study period {start} … {end}")
    return table


def scan_files(
    cases_csv: Path,
    geo_csv: Path,
    output_csv: Path,
    *,
    end_date: dt.date,
    start_date: dt.date | None = None,
    model: str = "permutation",
    max_days: int = 7,
    max_radius_km: float | None = None,
    max_size_pct: float = 50.0,
    reps: int = 999,
    seed: int = 0,
) -> list[FileCluster]:
    """Prospective space-time scan of CSV files; writes CLUSTERS and returns its rows.

    Parameters
    ----------
    cases_csv : Path
        ``location_id,date,count`` (dates YYYY-MM-DD; rows of one location and day add up).
    geo_csv : Path
        ``location_id,x,y`` in km, or ``location_id,lat,lon`` in degrees (SaTScan's sphere
        of radius 6367 km), plus ``population`` for the Poisson model. Every location is a
        circle centre, with or without cases.
    output_csv : Path
        CLUSTERS: ``cluster`` (1 = most likely), ``location_ids`` (sorted, ``;``-separated),
        ``start_date, end_date, observed, expected, llr, p_value,
        recurrence_interval_days, relative_risk, radius_km, centre``.
    end_date : datetime.date
        The analysis day: the last day of the study period, on which windows end.
    start_date : datetime.date, optional
        First day of the study period (default: the first case's date).
    model, max_days, max_radius_km, max_size_pct, reps
        As :func:`geo.scan.scan_space_time`.
    seed : int
        Seed of the Monte Carlo replicates: same files and seed, same output.

    Returns
    -------
    list of FileCluster
        The rows written, most likely cluster first.

    Raises
    ------
    UsageError
        Bad input (unreadable file, missing column, negative count, unknown or duplicate
        location, a date outside the study period, no cases, Poisson without population,
        an invalid setting), with the reason; nothing is written then.
    """
    if model not in ("permutation", "poisson"):
        raise UsageError(f"--model must be permutation or poisson, got {model!r}")
    cases = read_cases_csv(cases_csv)
    geo = read_geo_csv(geo_csv, need_population=model == "poisson")
    start = start_date or min(cases["date"])
    if start > end_date:
        raise UsageError(f"the study period starts ({start}) after --end-date {end_date}")
    table = _table(cases, geo, start, end_date, cases_csv)
    planar = "x" in geo.columns
    try:
        result = scan_space_time(
            table,
            rng=np.random.default_rng(seed),
            population=geo["population"].to_numpy() if model == "poisson" else None,
            model=model,  # type: ignore[arg-type]
            max_days=max_days,
            max_radius_km=max_radius_km,
            max_size_pct=max_size_pct,
            reps=reps,
            location_ids=geo["location_id"].tolist(),
            xy_km=geo[["x", "y"]].to_numpy() if planar else None,
            lat_lon=None if planar else geo[["lat", "lon"]].to_numpy(),
        )
    except ScanInputError as exc:
        raise UsageError(str(exc)) from None
    rows = [
        FileCluster(
            cluster=rank,
            location_ids=c.location_ids,
            start_date=start + dt.timedelta(days=c.start_day),
            end_date=start + dt.timedelta(days=c.end_day),
            observed=c.observed,
            expected=c.expected,
            llr=c.llr,
            p_value=c.p_value,
            recurrence_interval_days=c.recurrence_interval_days,
            relative_risk=c.relative_risk,
            radius_km=c.radius_km,
            centre=c.centre_id,
        )
        for rank, c in enumerate(result.clusters, start=1)
    ]
    _write(rows, output_csv)
    return rows


def _write(rows: list[FileCluster], path: Path) -> None:
    frame = pd.DataFrame([vars(r) for r in rows], columns=list(CLUSTER_COLUMNS))
    frame["location_ids"] = frame["location_ids"].map(";".join)
    for column in ("start_date", "end_date"):
        frame[column] = frame[column].map(dt.date.isoformat)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False, na_rep="")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
