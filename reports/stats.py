"""Leaders' statistics brief: weekly or monthly aggregates, HTML/PDF plus Excel and CSV.

Intended command (wired in ``sentinel/cli.py``)::

    sentinel stats --period week|month --end D [--audience internal|public] [--out DIR]

which calls ``render_stats(settings, period=…, end=…, audience=…, out_dir=…)`` and prints
the paths. ``--audience public`` (the default) is for distribution outside the CDC: every
count from 1 to 4 is shown as ``<5`` and cells that would let it be recovered are hidden
(:mod:`reports.stats_suppress`). ``internal`` shows exact numbers. Neither holds line lists
or identifiers: only aggregates (see ``docs/audiences.md``).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

import jinja2
import numpy as np
import pandas as pd

from geo.areas import load_area_set
from geo.maps import render_cluster_map
from reports.stats_suppress import COMPLEMENT, SMALL, suppress_small_counts
from reports.stats_tables import (
    Period,
    PeriodKind,
    StatsTable,
    alert_episodes,
    alerts_outcomes,
    data_quality,
    period_of,
    read_reviews,
    read_visits,
    response_times,
    syndrome_trends,
    visits_by_level,
    visits_by_street,
)
from sentinel.errors import UsageError
from sentinel.settings import Settings
from warehouse.store import Warehouse

__all__ = ["Audience", "StatsPaths", "build_tables", "render_stats", "shown_tables"]

Audience = Literal["internal", "public"]
TEMPLATES = Path(__file__).parent / "templates"
NOT_AVAILABLE = "n/a"
_AUDIENCE_LABELS: Mapping[str, str] = {
    "internal": "内部 Internal — 仅限疾控中心 CDC only: exact numbers",
    "public": "对外 Public — 小于5的计数已抑制 counts below 5 suppressed",
}
_PERIOD_LABELS: Mapping[str, str] = {"week": "周报 Weekly", "month": "月报 Monthly"}


@dataclass(frozen=True)
class StatsPaths:
    """Files written by :func:`render_stats`."""

    html: Path
    pdf: Path
    xlsx: Path
    csv_dir: Path


def _syndrome_labels() -> dict[str, str]:
    """Syndrome name → "中文 English" from the packaged definitions."""
    from transform.syndromes import load_definitions

    return {s.name: f"{s.zh} {s.en}" for s in load_definitions().syndromes}


def build_tables(store: Warehouse, period: Period) -> list[StatsTable]:
    """Compute every table of the brief with exact numbers.

    Raises
    ------
    UsageError
        When the warehouse holds no visits in the period.
    """
    visits = read_visits(store, period)
    if visits.empty:
        raise UsageError(f"no visits in the warehouse between {period.first} and {period.last}")
    facilities = store.read_table("facilities")
    streets = store.read_table("streets")
    labels = _syndrome_labels()
    alerts, reviews = alert_episodes(store.read_table("alerts"), read_reviews(store), period)
    return [
        visits_by_level(visits, facilities),
        visits_by_street(visits, streets),
        syndrome_trends(store, period, labels),
        alerts_outcomes(alerts, reviews, labels),
        response_times(alerts, reviews),
        data_quality(visits, facilities, period),
    ]


def _format(value: object, column: str = "") -> str:
    """A cell as text: thousands separators, one decimal for derived values, signed %."""
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return NOT_AVAILABLE
    if isinstance(value, float | np.floating) and column.endswith("_pct"):
        return f"{float(value):+.0f}%"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.1f}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return str(value)


def shown_tables(tables: list[StatsTable], audience: Audience) -> list[StatsTable]:
    """The tables as the audience sees them: suppressed for ``public``, exact otherwise."""
    if audience == "internal":
        return tables
    shown = []
    for t in tables:
        frame = t.frame.drop(columns=list(t.internal_only))
        counts = tuple(c for c in t.counts if c not in t.internal_only)
        hidden = suppress_small_counts(
            frame, counts, total_column=t.total_column, total_row=t.total_row, derived=t.derived
        )
        shown.append(replace(t, frame=hidden, counts=counts, internal_only=()))
    return shown


@dataclass(frozen=True)
class _RateMap:
    """The rate map's image and what its caption says about the colour scale."""

    png: Path
    lowest: tuple[str, float]
    """Street name and rate at the bottom of the colour scale."""
    highest: tuple[str, float]
    suppressed: int
    """Streets whose rate is hidden (drawn hatched)."""


def _rate_map(settings: Settings, street: StatsTable, out_dir: Path) -> _RateMap | None:
    """Choropleth of visits per 10,000 by street, coloured over the observed range.

    Rates hidden by suppression (:data:`SMALL`, :data:`COMPLEMENT`) are drawn hatched as
    "suppressed", missing ones (no population) grey as "no data"; None when the streets
    are not in the area set.
    """
    try:
        area = load_area_set(settings.area_set, home=settings.home)
    except ValueError:
        return None
    frame = street.frame[street.frame["street_code"].isin(set(area.codes))]
    rate = frame["rate_per_10k"]
    hidden = rate.isin([SMALL, COMPLEMENT]).to_numpy()
    numbers = pd.to_numeric(rate.where(~hidden), errors="coerce").to_numpy(dtype=float)
    known = np.isfinite(numbers)
    if not known.any() and not hidden.any():
        return None
    values = dict(zip(frame["street_code"][known], numbers[known], strict=True))
    png = render_cluster_map(
        area,
        values=values,
        scale="observed",
        suppressed=list(frame["street_code"][hidden]),
        path=out_dir / "rate_map",
        formats=("png",),
        values_label="就诊人次/每万人 visits per 10,000",
        dpi=110,
    )[0]
    names = frame["name_zh"].astype(str).to_numpy()
    order = np.flatnonzero(known)[np.argsort(numbers[known], kind="stable")]
    ends = [(str(names[i]), float(numbers[i])) for i in (order[:1].tolist() + order[-1:].tolist())]
    lowest, highest = ends if ends else [("", np.nan), ("", np.nan)]
    return _RateMap(png, lowest, highest, int(hidden.sum()))


def _write_tables(tables: list[StatsTable], xlsx: Path, csv_dir: Path) -> None:
    from openpyxl import Workbook

    csv_dir.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    book.remove(book.active)
    for table in tables:
        frame = table.frame.rename(columns=dict(table.headers))
        frame.to_csv(
            csv_dir / f"{table.name}.csv", index=False, na_rep=NOT_AVAILABLE, encoding="utf-8-sig"
        )
        sheet = book.create_sheet(table.name[:31])
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            sheet.append([_cell(v) for v in row])
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, float):
                    cell.number_format = "0.0"  # derived values keep their decimal
    book.save(xlsx)


def _cell(value: object) -> object:
    """An Excel cell value: numbers stay numbers, missing is "n/a"."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return NOT_AVAILABLE
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _html(
    tables: list[StatsTable], period: Period, audience: Audience, rate_map: _RateMap | None
) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    image = None
    if rate_map is not None:
        png = rate_map.png.read_bytes()
        image = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    rows = [
        {
            "title": t.title,
            "note": t.note,
            "headers": [t.headers.get(c, c) for c in t.frame.columns],
            "numeric": [
                c in t.counts or c in t.derived or pd.api.types.is_numeric_dtype(t.frame[c])
                for c in t.frame.columns
            ],
            "rows": [
                [_format(v, c) for v, c in zip(row, t.frame.columns, strict=True)]
                for row in t.frame.itertuples(index=False)
            ],
            "total_row": t.total_row,
        }
        for t in tables
    ]
    return env.get_template("stats.html.j2").render(
        css=(TEMPLATES / "stats.css").read_text(encoding="utf-8"),
        period=period,
        period_label=_PERIOD_LABELS[period.kind],
        audience=audience,
        audience_label=_AUDIENCE_LABELS[audience],
        tables=rows,
        map_image=image,
        rate_map=rate_map,
        small=SMALL,
        complement=COMPLEMENT,
        generated=dt.datetime.now().replace(microsecond=0),
    )


def render_stats(
    settings: Settings,
    *,
    period: PeriodKind,
    end: dt.date,
    audience: Audience = "public",
    out_dir: Path | None = None,
) -> StatsPaths:
    """Write the leaders' brief for the week or month ending on ``end``.

    Parameters
    ----------
    settings : Settings
        Gives the warehouse (``settings.warehouse_dir``) and the area set for the map.
    period : {"week", "month"}
        Seven days ending on ``end``, or the month ending on ``end`` (from the day after
        the same day of the previous month).
    end : datetime.date
        Last day of the period.
    audience : {"internal", "public"}
        ``public`` (default) suppresses counts below 5 in every output; ``internal``
        shows exact numbers and must stay in the CDC.
    out_dir : Path, optional
        Output folder; default ``<home>/reports/stats/<period>-<end>-<audience>``.

    Returns
    -------
    StatsPaths
        ``stats.html`` (self-contained), ``stats.pdf``, ``stats.xlsx`` (one sheet per
        table) and the folder of CSV tables (UTF-8 with BOM, so Excel reads Chinese).

    Raises
    ------
    UsageError
        On an unknown period or audience, or no visits in the period.
    """
    if period not in get_args(PeriodKind):
        raise UsageError(f"--period must be week or month, not {period!r}")
    if audience not in get_args(Audience):
        raise UsageError(f"--audience must be internal or public, not {audience!r}")
    if not settings.warehouse_dir.is_dir():
        raise UsageError(f"no warehouse at {settings.warehouse_dir}; load data first")
    bounds = period_of(period, end)
    store = Warehouse(settings.warehouse_dir)
    tables = shown_tables(build_tables(store, bounds), audience)
    out = (
        Path(out_dir)
        if out_dir is not None
        else settings.home / "reports" / "stats" / f"{period}-{end}-{audience}"
    )
    out.mkdir(parents=True, exist_ok=True)
    paths = StatsPaths(out / "stats.html", out / "stats.pdf", out / "stats.xlsx", out / "csv")
    street = next(t for t in tables if t.name == "visits_by_street")
    rate_map = _rate_map(settings, street, out)
    html = _html(tables, bounds, audience, rate_map)
    paths.html.write_text(html, encoding="utf-8")
    _write_tables(tables, paths.xlsx, paths.csv_dir)
    from weasyprint import HTML

    HTML(string=html, base_url=str(out)).write_pdf(paths.pdf)
    return paths
