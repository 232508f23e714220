"""The tables of the leaders' statistics brief, computed from the warehouse (exact counts).

Every function returns a :class:`StatsTable`: a DataFrame of exact numbers plus which
columns are counts (to suppress for the public audience), which column/row are totals and
which columns are derived from counts. Suppression is applied by :mod:`reports.stats`,
never here, so the internal brief and the public one come from the same numbers.
No table holds identifiers: visits are only counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from warehouse.schema import TABLES
from warehouse.store import Warehouse

__all__ = [
    "LEVEL_LABELS",
    "Period",
    "StatsTable",
    "alert_episodes",
    "alerts_outcomes",
    "data_quality",
    "period_of",
    "response_times",
    "syndrome_trends",
    "visits_by_level",
    "visits_by_street",
]

PeriodKind = Literal["week", "month"]
LEVEL_LABELS: Mapping[str, str] = {
    "tertiary": "三级医院 tertiary hospital",
    "secondary": "二级医院 secondary hospital",
    "chsc": "社区卫生服务中心 community health centre",
    "chss": "社区卫生服务站 community health station",
}
TOTAL_LABEL = "合计 Total"
OUTCOMES: tuple[str, ...] = (
    "true_outbreak",
    "false_alarm",
    "undetermined",
    "investigating",
    "unreviewed",
)
_VISIT_COLUMNS = ["facility_id", "visit_date", "visit_time", "setting", "street_code", "updated_at"]


@dataclass(frozen=True)
class Period:
    """The reporting period and the two it is compared with (all bounds inclusive)."""

    kind: PeriodKind
    first: dt.date
    last: dt.date
    previous: tuple[dt.date, dt.date]
    last_year: tuple[dt.date, dt.date]

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class StatsTable:
    """One table of the brief: exact values and how to suppress them."""

    name: str
    title: str
    frame: pd.DataFrame
    counts: tuple[str, ...]
    headers: Mapping[str, str]
    total_column: str | None = None
    total_row: bool = False
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    note: str = ""
    internal_only: tuple[str, ...] = ()
    """Columns left out of public outputs (e.g. counts another table's totals reveal)."""


def period_of(kind: PeriodKind, end: dt.date) -> Period:
    """The week (7 days) or month (same day last month + 1 → ``end``) ending on ``end``."""
    if kind == "week":
        first = end - dt.timedelta(days=6)
    else:
        first = (pd.Timestamp(end) - pd.DateOffset(months=1)).date() + dt.timedelta(days=1)
    length = (end - first).days + 1
    prev_last = first - dt.timedelta(days=1)
    year_first = (pd.Timestamp(first) - pd.DateOffset(years=1)).date()
    year_last = (pd.Timestamp(end) - pd.DateOffset(years=1)).date()
    return Period(
        kind,
        first,
        end,
        (prev_last - dt.timedelta(days=length - 1), prev_last),
        (year_first, year_last),
    )


def read_visits(store: Warehouse, period: Period) -> pd.DataFrame:
    """Visits of the period, without any key (only the columns the tables count)."""
    return store.read_dates("visits", period.first, period.last).select(_VISIT_COLUMNS).to_pandas()


def visits_by_level(visits: pd.DataFrame, facilities: pd.DataFrame) -> StatsTable:
    """Visits by facility level × care setting, with row and column totals."""
    levels = facilities.set_index("facility_id")["level"].fillna("unknown")
    level = visits["facility_id"].map(levels).fillna("unknown")
    settings = ["outpatient", "emergency", "inpatient"]
    table = pd.crosstab(level, visits["setting"]).reindex(columns=settings, fill_value=0)
    order = [lv for lv in LEVEL_LABELS if lv in set(levels)] + sorted(
        set(levels) - set(LEVEL_LABELS)
    )
    table = table.reindex(order, fill_value=0)
    table = _with_totals(table, "level", LEVEL_LABELS)
    headers = {
        "level": "机构级别 Facility level",
        "outpatient": "门诊 Outpatient",
        "emergency": "急诊 Emergency",
        "inpatient": "住院 Inpatient",
        "total": "合计 Total",
    }
    return StatsTable(
        "visits_by_level",
        "按机构级别的就诊人次 Visits by facility level",
        table,
        (*settings, "total"),
        headers,
        total_column="total",
        total_row=True,
    )


def visits_by_street(visits: pd.DataFrame, streets: pd.DataFrame) -> StatsTable:
    """Visits by street of residence and the rate per 10,000 residents."""
    counts = visits["street_code"].value_counts()
    table = streets[["street_code", "name_zh", "name_en", "population"]].copy()
    table["visits"] = table["street_code"].map(counts).fillna(0).astype("int64")
    # The total row makes the grand total explicit (it is also in visits_by_level), so a
    # lone small street is complemented rather than recoverable from that other table.
    total = {
        "street_code": "",
        "name_zh": TOTAL_LABEL,
        "name_en": "",
        "visits": table["visits"].sum(),
    }
    total["population"] = pd.to_numeric(table["population"], errors="coerce").sum()
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["visits"] = table["visits"].astype("int64")
    population = pd.to_numeric(table["population"], errors="coerce").astype(float)
    rate = table["visits"] / population.where(population > 0) * 10_000
    table["rate_per_10k"] = rate.round(1)
    headers = {
        "street_code": "街道代码 Street code",
        "name_zh": "街道 Street",
        "name_en": "Street (en)",
        "population": "人口 Population",
        "visits": "就诊人次 Visits",
        "rate_per_10k": "每万人 per 10,000",
    }
    note = "未能确定居住街道的就诊不计入 Visits without a resolved street of residence are not counted."
    return StatsTable(
        "visits_by_street",
        "按居住街道的就诊人次 Visits by street of residence",
        table,
        ("visits",),
        headers,
        total_row=True,
        derived={"rate_per_10k": ("visits",)},
        note=note,
    )


def _syndrome_sums(store: Warehouse, first: dt.date, last: dt.date) -> pd.Series | None:
    """Syndrome counts over the dates, or None when no date of the range has data."""
    if not any(first <= d <= last for d in store.partition_dates("syndrome_daily")):
        return None
    data = store.read_dates("syndrome_daily", first, last).select(["syndrome", "count"]).to_pandas()
    return data.groupby("syndrome")["count"].sum()


def _change(now: pd.Series, before: pd.Series) -> pd.Series:
    return ((now - before) / before.where(before > 0) * 100).round(0)


def syndrome_trends(store: Warehouse, period: Period, labels: Mapping[str, str]) -> StatsTable:
    """Syndrome counts of the period against the previous period and the same period last year."""
    now = _syndrome_sums(store, period.first, period.last)
    prev = _syndrome_sums(store, *period.previous)
    year = _syndrome_sums(store, *period.last_year)
    names = sorted(set().union(*(s.index for s in (now, prev, year) if s is not None)))
    table = pd.DataFrame({"syndrome": [labels.get(n, n) for n in names]})
    for col, sums in (("count", now), ("previous", prev), ("last_year", year)):
        values = (
            pd.Series(np.nan, index=names) if sums is None else sums.reindex(names, fill_value=0)
        )
        table[col] = values.astype("int64" if sums is not None else "float64").to_numpy()
    table["change_previous_pct"] = _change(
        table["count"].astype(float), table["previous"].astype(float)
    )
    table["change_year_pct"] = _change(
        table["count"].astype(float), table["last_year"].astype(float)
    )
    headers = {
        "syndrome": "症候群 Syndrome",
        "count": "本期 This period",
        "previous": "上期 Previous period",
        "change_previous_pct": "环比% vs previous",
        "last_year": "去年同期 Same period last year",
        "change_year_pct": "同比% vs last year",
    }
    note = f"上期 previous: {period.previous[0]}–{period.previous[1]}; 去年同期 last year: {period.last_year[0]}–{period.last_year[1]}; n/a = 无数据 no data."
    derived = {
        "change_previous_pct": ("count", "previous"),
        "change_year_pct": ("count", "last_year"),
    }
    return StatsTable(
        "syndrome_trends",
        "症候群趋势 Syndrome trends",
        table,
        ("count", "previous", "last_year"),
        headers,
        derived=derived,
        note=note,
    )


def read_reviews(store: Warehouse) -> pd.DataFrame:
    """All alert reviews (``alert_id, status, outcome, updated_at``); empty when none."""
    columns = ["alert_id", "status", "outcome", "updated_at"]
    if "alert_reviews" not in TABLES:  # the table arrived with the alert lifecycle
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return store.read_table("alert_reviews")[columns]


def alert_episodes(
    alerts: pd.DataFrame, reviews: pd.DataFrame, period: Period
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alert groups (an alert and those continuing it) with an alert in the period.

    A continuing alert is not re-announced, so leaders count groups, not daily rows.

    Parameters
    ----------
    alerts : pandas.DataFrame
        All stored alerts (groups may start before the period).
    reviews : pandas.DataFrame
        All review rows.
    period : Period
        The reporting period.

    Returns
    -------
    tuple of pandas.DataFrame
        One row per group (``alert_id`` = the group's first alert, ``syndrome``, the
        highest ``severity`` in the period, the group's first ``created_at``) and the
        review rows with ``alert_id`` replaced by their group's id.
    """
    from reports.lifecycle import group_ids

    frame = alerts.assign(group=group_ids(alerts) if len(alerts) else pd.Series(dtype=object))
    day = pd.to_datetime(frame["date"]).dt.date
    inside = frame[(day >= period.first) & (day <= period.last)]
    groups = frame[frame["group"].isin(set(inside["group"]))]
    rank = {"high": 0, "medium": 1, "low": 2}
    worst = inside.assign(r=inside["severity"].map(rank)).sort_values("r").groupby("group").head(1)
    episodes = worst.set_index("group")[["syndrome", "severity"]]
    episodes["created_at"] = groups.groupby("group")["created_at"].min()
    episodes = episodes.rename_axis("alert_id").reset_index()
    group_of = dict(zip(groups["alert_id"], groups["group"], strict=True))
    grouped = reviews[reviews["alert_id"].isin(group_of.keys())].copy()
    grouped["alert_id"] = grouped["alert_id"].map(group_of)
    return episodes, grouped


def _outcome(latest: pd.DataFrame) -> pd.Series:
    closed = latest["status"] == "closed"
    outcome = latest["outcome"].where(closed).fillna("undetermined").where(closed)
    return outcome.fillna(latest["status"].replace({"new": "unreviewed"}))


def alerts_outcomes(
    alerts: pd.DataFrame, reviews: pd.DataFrame, labels: Mapping[str, str]
) -> StatsTable:
    """Alert groups of the period by syndrome and current review outcome, with totals."""
    latest = (
        reviews.sort_values("updated_at", kind="stable")
        .groupby("alert_id")
        .tail(1)
        .set_index("alert_id")
    )
    state = alerts[["alert_id", "syndrome"]].copy()
    state["outcome"] = "unreviewed"
    if len(latest):
        known = state["alert_id"].isin(latest.index)
        state.loc[known, "outcome"] = _outcome(latest.loc[state.loc[known, "alert_id"]]).to_numpy()
    table = pd.crosstab(state["syndrome"], state["outcome"]).reindex(
        columns=list(OUTCOMES), fill_value=0
    )
    table = _with_totals(table, "syndrome", labels)
    headers = {
        "syndrome": "症候群 Syndrome",
        "true_outbreak": "确认暴发 True outbreak",
        "false_alarm": "误报 False alarm",
        "undetermined": "不确定 Undetermined",
        "investigating": "调查中 Investigating",
        "unreviewed": "未审核 Not reviewed",
        "total": "预警数 Alerts",
    }
    note = "" if len(reviews) else "尚无审核记录 No alert reviews recorded yet."
    return StatsTable(
        "alerts_outcomes",
        "预警及处置结果 Alerts and outcomes",
        table,
        (*OUTCOMES, "total"),
        headers,
        total_column="total",
        total_row=True,
        note=note,
    )


def response_times(alerts: pd.DataFrame, reviews: pd.DataFrame) -> StatsTable:
    """Hours from an alert's creation to its first review, by severity."""
    first = reviews.groupby("alert_id")["updated_at"].min()
    frame = alerts[["alert_id", "severity", "created_at"]].copy()
    frame["first_review"] = pd.to_datetime(frame["alert_id"].map(first.to_dict()))
    hours = (
        pd.to_datetime(frame["first_review"]) - pd.to_datetime(frame["created_at"])
    ).dt.total_seconds() / 3600
    frame["hours"] = hours
    rows = []
    labels = {"high": "高 high", "medium": "中 medium", "low": "低 low"}
    for severity, part in [
        *((s, frame[frame["severity"] == s]) for s in ("high", "medium", "low")),
        (TOTAL_LABEL, frame),
    ]:
        reviewed = part["hours"].dropna()
        rows.append(
            {
                "severity": labels.get(severity, severity),
                "alerts": len(part),
                "reviewed": len(reviewed),
                "median_hours": round(float(reviewed.median()), 1) if len(reviewed) else np.nan,
            }
        )
    table = pd.DataFrame(rows).astype({"alerts": "int64", "reviewed": "int64"})
    headers = {
        "severity": "严重程度 Severity",
        "alerts": "预警数 Alerts",
        "reviewed": "已审核 Reviewed",
        "median_hours": "中位响应时间(小时) Median hours to first review",
    }
    return StatsTable(
        "response_times",
        "响应时间 Response times",
        table,
        ("alerts", "reviewed"),
        headers,
        total_row=True,
        derived={"median_hours": ("reviewed",)},
        note="n/a = 尚无审核 no reviews yet.",
    )


def data_quality(visits: pd.DataFrame, facilities: pd.DataFrame, period: Period) -> StatsTable:
    """Per-facility scorecard: days reporting, completeness, visits and record lag.

    Visits per facility are internal only: they add up to the totals of
    :func:`visits_by_level`, so a small facility could be recovered by subtraction.
    """
    grouped = visits.groupby("facility_id")
    days = grouped["visit_date"].nunique()
    lag = (
        pd.to_datetime(visits["updated_at"]) - pd.to_datetime(visits["visit_time"])
    ).dt.total_seconds() / 3600
    median_lag = lag.groupby(visits["facility_id"]).median()
    table = facilities[["facility_id", "name_zh", "level"]].copy()
    reporting = table["facility_id"].map(days).fillna(0).astype(int)
    table["level"] = [LEVEL_LABELS.get(str(lv), str(lv)) for lv in table["level"]]
    table["days_reporting"] = [f"{d}/{period.days}" for d in reporting]
    table["completeness_pct"] = (reporting / period.days * 100).round(0).astype(int).astype(
        str
    ) + "%"
    table["visits"] = table["facility_id"].map(grouped.size()).fillna(0).astype("int64")
    table["median_lag_hours"] = table["facility_id"].map(median_lag).round(1)
    headers = {
        "facility_id": "机构编号 ID",
        "name_zh": "机构 Facility",
        "level": "级别 Level",
        "days_reporting": "报告天数 Days reporting",
        "completeness_pct": "完整性 Completeness",
        "visits": "就诊人次 Visits",
        "median_lag_hours": "记录延迟中位数(小时) Median record lag (h)",
    }
    note = "完整性 = 有就诊记录的天数 / 期内天数; 记录延迟 = updated_at − visit_time. Completeness = days with visits / days in period; lag = latest version time − visit time."
    return StatsTable(
        "data_quality",
        "数据质量评分 Data-quality scorecard",
        table,
        ("visits",),
        headers,
        note=note,
        internal_only=("visits",),
    )


def _with_totals(table: pd.DataFrame, name: str, labels: Mapping[str, str]) -> pd.DataFrame:
    """Integer counts with a ``total`` column and a total row; the index becomes column
    ``name`` with its values labelled (unknown ones kept)."""
    out = table.copy()
    out["total"] = out.sum(axis=1)
    out.loc[TOTAL_LABEL] = out.sum(axis=0)
    out = out.astype("int64").reset_index(names=name)
    out[name] = [labels.get(v, v) for v in out[name]]
    return out
