"""What the daily bulletin shows, read from the warehouse (no rendering here).

One read of ``visits`` over the 8 weeks before the day feeds the data-quality section,
the age/sex breakdowns and the line lists; ``patient_key`` is dropped as soon as it is
read, so no output can carry it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports.lifecycle import OUTCOMES, closed_on
from reports.volume import usual_daily_visits
from warehouse.reviews import read_reviews
from warehouse.store import Warehouse

__all__ = ["AlertView", "BulletinData", "ClosedCounts", "load_bulletin_data", "rank_alerts"]

WEEKS = 8
LATE_AFTER = pd.Timedelta(hours=24)
TEMPORAL_WINDOW_DAYS = 7
"""Days of visits behind a temporal alert's age/sex breakdown and line list."""
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
_VISIT_COLUMNS = [
    "facility_id",
    "visit_date",
    "visit_time",
    "sex",
    "age_group",
    "street_code",
    "chief_complaint",
    "diagnosis_codes",
    "syndromes",
    "updated_at",
    "batch_id",
]


@dataclass
class AlertView:
    """One alert with what its detail section needs."""

    row: dict[str, object]
    curve: pd.DataFrame
    """Daily ``count`` over the last 8 weeks (index: date) for its streets × syndrome."""
    window: tuple[dt.date, dt.date]
    cases: pd.DataFrame
    """De-identified visits of the alert's streets, syndrome (and age group) in ``window``."""
    cluster: bool
    """A space-time cluster (its window is the cluster's; observed/expected are totals)."""


@dataclass(frozen=True)
class ClosedCounts:
    """Alerts that stopped on the day, in the two senses staff ask about.

    The two are independent: an alert may end and be closed by review the same day, an
    episode may be closed while it still alarms, and an ended alert may be unreviewed.
    """

    ended: int
    """Alerts of the day before that no alert of the day continues (no longer signalled)."""
    reviewed: int
    """Alert groups (episodes) a review closed on the day (:func:`closed_on`)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """``reviewed`` by outcome: ``true_outbreak``, ``false_alarm``, ``undetermined``."""


@dataclass
class BulletinData:
    """Everything the bulletin shows for one day."""

    day: dt.date
    visits: int
    syndromes: pd.DataFrame
    alerts: pd.DataFrame
    closed: ClosedCounts
    details: list[AlertView]
    quality: pd.DataFrame
    batches: pd.DataFrame
    streets: dict[str, tuple[str, str]] = field(default_factory=dict)
    facilities: dict[str, tuple[str, str]] = field(default_factory=dict)


def rank_alerts(alerts: pd.DataFrame) -> pd.DataFrame:
    """Sort alerts by severity (high first), then recurrence interval, then excess.

    Ties end on ``alert_id`` so the order never depends on file order.
    """
    if alerts.empty:
        return alerts.reset_index(drop=True)
    ranked = alerts.assign(
        _sev=alerts["severity"].map(_SEVERITY_ORDER).fillna(3),
        _ri=-alerts["recurrence_interval_days"].astype(float).fillna(-np.inf),
        _excess=-(alerts["observed"] - alerts["upperbound"].astype(float).fillna(0.0)),
    )
    ranked = ranked.sort_values(["_sev", "_ri", "_excess", "alert_id"], kind="stable")
    return ranked.drop(columns=["_sev", "_ri", "_excess"]).reset_index(drop=True)


def _curve(wh: Warehouse, alert: pd.Series, first: dt.date, day: dt.date) -> pd.DataFrame:
    codes = list(alert["street_codes"])
    dates = pd.date_range(first, day, freq="D").date
    if alert["age_group"] is None or pd.isna(alert["age_group"]):
        rows = wh.read_dates("syndrome_daily", first, day).to_pandas()
    else:  # sparse table: a missing row is a zero
        rows = wh.read_dates("syndrome_age_daily", first, day).to_pandas()
        rows = rows[rows["age_group"] == alert["age_group"]]
    rows = rows[(rows["syndrome"] == alert["syndrome"]) & rows["street_code"].isin(codes)]
    counts = rows.groupby("date")["count"].sum().reindex(dates, fill_value=0)
    return pd.DataFrame({"count": counts.astype(int)}, index=pd.Index(dates, name="date"))


def _cases(visits: pd.DataFrame, alert: pd.Series, window: tuple[dt.date, dt.date]) -> pd.DataFrame:
    in_window = (visits["visit_date"] >= window[0]) & (visits["visit_date"] <= window[1])
    mask = in_window & visits["street_code"].isin(list(alert["street_codes"]))
    mask &= visits["syndromes"].map(lambda s: alert["syndrome"] in list(s))
    if alert["age_group"] is not None and not pd.isna(alert["age_group"]):
        mask &= visits["age_group"] == alert["age_group"]
    # Most recent first: the alert day's cases head the line list.
    return visits[mask].sort_values(["visit_time", "facility_id"], ascending=False, kind="stable")


def _quality(visits: pd.DataFrame, facilities: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Each facility's visits that day against the median of the same weekday before."""
    usual = usual_daily_visits(visits, facilities["facility_id"], day, weeks=WEEKS).to_dict()
    rows = []
    for fac in facilities.itertuples(index=False):
        normal = float(usual[fac.facility_id])
        today = visits[(visits["facility_id"] == fac.facility_id) & (visits["visit_date"] == day)]
        n = len(today)
        late = int(((today["updated_at"] - today["visit_time"]) > LATE_AFTER).sum())
        ratio = n / normal if normal > 0 else np.nan
        flag = "silent" if n == 0 and normal > 0 else ""
        if not flag and normal >= 10 and ratio < 0.5:
            flag = "low"
        elif not flag and normal >= 10 and ratio > 2.0:
            flag = "high_volume"
        rows.append((fac.facility_id, fac.name_zh, n, normal, ratio, late, flag))
    out = pd.DataFrame(
        rows, columns=["facility_id", "name_zh", "visits", "normal", "ratio", "late", "flag"]
    )
    flagged_first = out.assign(_ok=out["flag"].eq("")).sort_values(
        ["_ok", "facility_id"], kind="stable"
    )
    return flagged_first.drop(columns="_ok").reset_index(drop=True)


def _batches(wh: Warehouse, batch_ids: set[str], day: dt.date) -> pd.DataFrame:
    """Batches that delivered the day's visits or were started on the day or the next."""
    batches = wh.read_table("batches")
    started = pd.to_datetime(batches["started"]).dt.date
    keep = batches["batch_id"].isin(batch_ids) | started.between(day, day + dt.timedelta(days=1))
    batches = batches[keep].sort_values(["started", "batch_id"], kind="stable")
    quarantine = wh.read_table("quarantine")
    reasons = []
    for batch_id in batches["batch_id"]:
        top = quarantine[quarantine["batch_id"] == batch_id]["reason"].value_counts()
        top = top.sort_index().sort_values(ascending=False, kind="stable").head(3)
        reasons.append("; ".join(f"{r} ({n})" for r, n in top.items()))
    return batches.assign(reasons=reasons).reset_index(drop=True)


def _names(table: pd.DataFrame, key: str) -> dict[str, tuple[str, str]]:
    """``{key: (name_zh, name_en)}``; an English name falls back to the Chinese one."""
    zh, en = table["name_zh"].astype(str), table["name_en"].fillna(table["name_zh"]).astype(str)
    return {str(k): (z, e) for k, z, e in zip(table[key], zh, en, strict=True)}


def load_bulletin_data(wh: Warehouse, day: dt.date, *, top: int = 10) -> BulletinData:
    """Read the warehouse for the bulletin of ``day`` (details for the ``top`` alerts)."""
    first = day - dt.timedelta(weeks=WEEKS)
    visits = wh.read_dates("visits", first, day).select(_VISIT_COLUMNS).to_pandas()
    visits["visit_date"] = pd.to_datetime(visits["visit_date"]).dt.date
    today = visits[visits["visit_date"] == day]
    daily = wh.read_dates("syndrome_daily", day - dt.timedelta(days=7), day).to_pandas()
    daily["date"] = pd.to_datetime(daily["date"]).dt.date
    per = daily.groupby(["syndrome", "date"])["count"].sum().unstack(fill_value=0)
    prev = [c for c in per.columns if c < day]
    syndromes = pd.DataFrame(
        {
            "count": per[day] if day in per.columns else 0,
            "prev7": per[prev].mean(axis=1) if prev else np.nan,
        }
    ).reset_index()
    alerts = rank_alerts(wh.read_dates("alerts", day, day).to_pandas())
    yesterday = wh.read_dates("alerts", day - dt.timedelta(days=1), day - dt.timedelta(days=1))
    continued = set(alerts["continues"].dropna()) if not alerts.empty else set()
    ended = len(set(yesterday["alert_id"].to_pylist()) - continued)
    reviewed = closed_on(wh.read_table("alerts"), read_reviews(wh.root), day)
    by_outcome = reviewed["outcome"].value_counts()
    closed = ClosedCounts(
        ended=ended,
        reviewed=len(reviewed),
        outcomes={o: int(by_outcome.get(o, 0)) for o in OUTCOMES},
    )
    details = []
    for _, alert in alerts.head(top).iterrows():
        start = alert["window_start"]
        cluster = start is not None and not pd.isna(start)
        window_first = (
            pd.Timestamp(start).date()
            if cluster
            else day - dt.timedelta(days=TEMPORAL_WINDOW_DAYS - 1)
        )
        window = (window_first, day)
        details.append(
            AlertView(
                {str(k): v for k, v in alert.items()},
                _curve(wh, alert, first, day),
                window,
                _cases(visits, alert, window),
                cluster,
            )
        )
    streets = wh.read_table("streets")
    facilities = wh.read_table("facilities")
    return BulletinData(
        day=day,
        visits=len(today),
        syndromes=syndromes,
        alerts=alerts,
        closed=closed,
        details=details,
        quality=_quality(visits, facilities, day),
        batches=_batches(wh, set(today["batch_id"]), day),
        streets=_names(streets, "street_code"),
        facilities=_names(facilities, "facility_id"),
    )
