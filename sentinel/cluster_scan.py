"""`sentinel scan --date D`: the nightly space-time scan of every syndrome over the streets.

For each analysis day and syndrome: the street × day counts of ``syndrome_daily`` over the
``study_days`` ending on the day (never after it), the streets' centroids (km) and
populations from the area set, SaTScan's prospective scan (:mod:`geo.scan`). Clusters whose
recurrence interval reaches ``min_recurrence_days`` become alerts (detector
``scan_permutation`` or ``scan_poisson``). A cluster that shares streets with a cluster of
the same syndrome found on one of the ``max_days`` days before, and whose days overlap it,
continues it: ``ongoing`` when it did not grow (no new street, no more cases), ``grown``
otherwise; only ``new`` and ``grown`` clusters are meant to be announced. Re-running a day
replaces that day's scan alerts and leaves the temporal detectors' alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geo.areas import AreaSet, load_area_set
from sentinel.detecting import SCAN_PREFIX, alert_id
from sentinel.logs import log_event
from sentinel.scan_settings import ScanSettings
from sentinel.settings import Settings
from sentinel.timeseries import open_analysis
from warehouse.store import Warehouse

log = logging.getLogger("sentinel.scan")


@dataclass(frozen=True)
class ScanSummary:
    """What a warehouse-mode scan did."""

    days: list[dt.date]
    syndromes: list[str]
    scans: int
    alerts: pd.DataFrame
    clusters: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Every cluster found (also those below the recurrence threshold), for reports."""


def scan_warehouse(
    settings: Settings,
    first_day: dt.date,
    last_day: dt.date | None = None,
    *,
    now: dt.datetime | None = None,
) -> ScanSummary:
    """Scan each syndrome for each day of ``first_day … last_day`` and store the alerts."""
    wh, last_day = open_analysis(settings.warehouse_dir, first_day, last_day)
    cfg = settings.scan
    area = load_area_set(settings.area_set, home=settings.home)
    start = first_day - dt.timedelta(days=cfg.study_days - 1)
    daily = wh.read_dates("syndrome_daily", start, last_day).to_pandas()
    syndromes = sorted(set(daily["syndrome"])) if not cfg.syndromes else list(cfg.syndromes)
    geo = _geography(area)
    codes = geo["street_code"].tolist()
    days = [d.date() for d in pd.date_range(first_day, last_day, freq="D")]
    calendar = pd.date_range(start, last_day, freq="D")
    cube = _cube(daily, codes, syndromes, calendar)  # syndrome × street × day
    detector = f"{SCAN_PREFIX}{cfg.model}"
    earlier = _earlier_alerts(wh, first_day, cfg.max_days, detector)
    created = now or dt.datetime.now().replace(microsecond=0)
    kept = _kept_reviews(wh, first_day, last_day)
    frames: dict[dt.date, list[dict[str, Any]]] = {d: [] for d in days}
    found: list[dict[str, Any]] = []
    scans = 0
    for day in days:
        end = int(calendar.searchsorted(pd.Timestamp(day)))
        lo = max(0, end - cfg.study_days + 1)
        for k, syndrome in enumerate(syndromes):
            counts = cube[k, :, lo : end + 1]
            if counts.sum() < 2:
                continue
            scans += 1
            rng = np.random.default_rng(_seed(cfg.seed, day, syndrome))
            for cluster in run_scan(counts, geo, cfg, rng):
                streets = [codes[i] for i in cluster["locations"]]
                window_start = day - dt.timedelta(days=int(end - lo - cluster["start"]))
                row = {
                    "date": day, "syndrome": syndrome, "streets": streets,
                    "window_start": window_start, **{k2: cluster[k2] for k2 in _NUMBERS},
                }  # fmt: skip
                found.append(row)
                if cluster["recurrence_interval_days"] < cfg.min_recurrence_days:
                    continue
                alert = _alert_row(row, detector, cfg, created, kept, earlier)
                frames[day].append(alert)
                earlier.append(alert)
    wh.write_alerts_days(
        {d: pd.DataFrame(rows) for d, rows in frames.items()},
        replace=lambda d: d.startswith(SCAN_PREFIX),
    )
    alerts = pd.DataFrame([r for rows in frames.values() for r in rows])
    log_event(
        log, "scan_finished", first=first_day, last=last_day, syndromes=len(syndromes),
        scans=scans, clusters=len(found), alerts=len(alerts),
    )  # fmt: skip
    return ScanSummary(days, syndromes, scans, alerts, pd.DataFrame(found))


_NUMBERS = ("observed", "expected", "relative_risk", "llr", "p_value", "recurrence_interval_days")


def run_scan(
    counts: np.ndarray, geo: pd.DataFrame, cfg: ScanSettings, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """One prospective scan; clusters as dicts (locations, start, numbers), most likely first."""
    from geo.scan import scan_space_time

    result = scan_space_time(
        counts.astype(np.int64),
        rng=rng,
        xy_km=geo[["x", "y"]].to_numpy(),
        model=cfg.model,
        population=geo["population"].to_numpy(float) if cfg.model == "poisson" else None,
        max_days=cfg.max_days,
        max_radius_km=cfg.max_radius_km,
        max_size_pct=cfg.max_size_pct,
        reps=cfg.reps,
    )
    return [
        {
            "locations": list(c.locations),
            "start": int(c.start_day),
            "observed": float(c.observed),
            "expected": float(c.expected),
            "relative_risk": float(c.relative_risk),
            "llr": float(c.llr),
            "p_value": float(c.p_value),
            "recurrence_interval_days": float(c.recurrence_interval_days),
        }
        for c in result.clusters
    ]


def _geography(area: AreaSet) -> pd.DataFrame:
    geo = area.centroids_km()
    population = area.streets.set_index(area.streets["street_code"].astype(str))["population"]
    return geo.assign(population=population.loc[geo["street_code"]].to_numpy(float))


def _cube(
    daily: pd.DataFrame, codes: list[str], syndromes: list[str], calendar: pd.DatetimeIndex
) -> np.ndarray:
    cube = np.zeros((len(syndromes), len(codes), len(calendar)), dtype=np.int64)
    if daily.empty:
        return cube
    k = pd.Index(syndromes).get_indexer(pd.Index(daily["syndrome"]))
    i = pd.Index(codes).get_indexer(pd.Index(daily["street_code"]))
    t = calendar.get_indexer(pd.DatetimeIndex(pd.to_datetime(daily["date"])))
    ok = (k >= 0) & (i >= 0) & (t >= 0)
    np.add.at(cube, (k[ok], i[ok], t[ok]), daily["count"].to_numpy(np.int64)[ok])
    return cube


def _seed(seed: int, day: dt.date, syndrome: str) -> int:
    digest = hashlib.sha256(f"{seed}|{day.isoformat()}|{syndrome}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _earlier_alerts(
    wh: Warehouse, first_day: dt.date, max_days: int, detector: str
) -> list[dict[str, Any]]:
    """Scan alerts of the ``max_days`` days before ``first_day`` (clusters a new one may continue)."""
    before = wh.read_dates(
        "alerts", first_day - dt.timedelta(days=max_days), first_day - dt.timedelta(days=1)
    ).to_pandas()
    before = before[before["detector"] == detector]
    return before.to_dict("records")


def _kept_reviews(wh: Warehouse, first: dt.date, last: dt.date) -> dict[str, tuple[object, object]]:
    earlier = wh.read_dates("alerts", first, last).to_pandas()
    return {r.alert_id: (r.created_at, r.status) for r in earlier.itertuples(index=False)}


def _alert_row(
    row: dict[str, Any],
    detector: str,
    cfg: ScanSettings,
    created: dt.datetime,
    kept: dict[str, tuple[Any, Any]],
    earlier: list[dict[str, Any]],
) -> dict[str, Any]:
    day = row["date"]
    streets = row["streets"]
    assert isinstance(day, dt.date) and isinstance(streets, list)
    ident = alert_id(day, str(row["syndrome"]), streets, None, detector)
    announcement, continues = _continuation(row, earlier)
    created_at, status = kept.get(ident, (created, "new"))
    observed = float(row["observed"])
    expected = float(row["expected"])
    ri = float(row["recurrence_interval_days"])
    return {
        "alert_id": ident,
        "date": day,
        "syndrome": row["syndrome"],
        "street_codes": sorted(streets),
        "age_group": None,
        "detector": detector,
        "observed": observed,
        "expected": expected,
        "upperbound": None,
        "score": row["llr"],
        "p_value": row["p_value"],
        "severity": "high" if ri >= 10 * cfg.min_recurrence_days else "medium",
        "status": status,
        "created_at": pd.Timestamp(created_at),
        "params": json.dumps(
            {k: v for k, v in asdict(cfg).items() if k != "syndromes"}, sort_keys=True
        ),
        "window_start": row["window_start"],
        "relative_risk": row["relative_risk"],
        "llr": row["llr"],
        "recurrence_interval_days": ri,
        "announcement": announcement,
        "continues": continues,
    }


def _continuation(row: dict[str, Any], earlier: list[dict[str, Any]]) -> tuple[str, str | None]:
    """``new``, or ``ongoing``/``grown`` and the id of the latest earlier cluster it continues."""
    day = row["date"]
    streets = set(row["streets"])
    start = row["window_start"]
    assert isinstance(day, dt.date) and isinstance(start, dt.date)
    matches = [
        e
        for e in earlier
        if e["syndrome"] == row["syndrome"]
        and _as_date(e["date"]) < day
        and _as_date(e["date"]) >= start  # the earlier cluster's days overlap this window
        and streets & set(e["street_codes"])
    ]
    if not matches:
        return "new", None
    last = max(matches, key=lambda e: (_as_date(e["date"]), str(e["alert_id"])))
    grew = bool(streets - set(last["street_codes"])) or row["observed"] > last["observed"]
    return ("grown" if grew else "ongoing"), str(last["alert_id"])


def _as_date(value: object) -> dt.date:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    assert isinstance(value, dt.date)
    return value
