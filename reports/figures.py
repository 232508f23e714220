"""Figures of the daily bulletin: epidemic curves and age/sex bars, as PNG bytes.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot state) and the
CJK font :func:`geo.maps.find_cjk_font` finds, so Chinese labels never come out as boxes.
PNGs carry no timestamp: the same data gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib as mpl
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, WeekdayLocator, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from geo.maps import CJK_PACKAGE, CJKFontError, find_cjk_font

__all__ = ["render_age_sex", "render_epicurve"]

AGE_GROUPS = ("0-4", "5-14", "15-24", "25-59", "60+")
SEXES = (("M", "男 M", "#4c78a8"), ("F", "女 F", "#e45756"), ("U", "不详 U", "#9d9d9d"))
DPI = 110


@contextmanager
def _style() -> Iterator[None]:
    font = find_cjk_font()
    rc = {"font.family": [font.family], "axes.unicode_minus": False, "font.size": 9}
    with mpl.rc_context(rc), warnings.catch_warnings():  # type: ignore[arg-type]
        warnings.filterwarnings("error", message=r"Glyph .* missing from", category=UserWarning)
        yield


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    except UserWarning as exc:
        raise CJKFontError(f"{exc}; install {CJK_PACKAGE}") from exc
    return buf.getvalue()


def render_epicurve(
    curve: pd.DataFrame,
    day: dt.date,
    *,
    cluster_window: tuple[dt.date, dt.date] | None = None,
    expected: float | None,
    upperbound: float | None,
    title: str,
) -> bytes:
    """Daily counts over the last weeks, the alert day highlighted, as a PNG.

    Parameters
    ----------
    curve : pandas.DataFrame
        Column ``count`` indexed by date.
    day : datetime.date
        The alert day (drawn red).
    cluster_window : tuple of date, optional
        First and last day of a space-time cluster, shaded.
    expected, upperbound : float, optional
        A temporal detector's expected count and threshold for ``day``, drawn as a band
        over the days before it (pass none for a cluster: its values are window totals).
    title : str
        Title (Chinese allowed).

    Returns
    -------
    bytes
        The PNG.
    """
    with _style():
        fig = Figure(figsize=(7.0, 2.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        dates = pd.to_datetime(pd.Index(curve.index))
        colours = ["#d62728" if d.date() == day else "#7f9fbf" for d in dates]
        ax.bar(dates, curve["count"], width=0.85, color=colours, label="病例 cases")
        if cluster_window is not None:
            start, end = date2num([pd.Timestamp(d) for d in cluster_window])
            ax.axvspan(
                start - 0.5,
                end + 0.5,
                color="#ffd8a8",
                alpha=0.6,
                zorder=0,
                label="聚集时间窗 cluster window",
            )
        # The band covers the days before the alert day: what "normal" looked like.
        span = list(
            date2num(
                [
                    pd.Timestamp(day) - pd.Timedelta(days=10),
                    pd.Timestamp(day) + pd.Timedelta(hours=12),
                ]
            )
        )
        if expected is not None and not pd.isna(expected):
            top = upperbound if upperbound is not None and not pd.isna(upperbound) else expected
            ax.fill_between(
                span,
                [expected] * 2,
                [top] * 2,
                color="#2ca02c",
                alpha=0.2,
                label="期望—阈值 expected–threshold",
            )
            ax.plot(span, [expected] * 2, color="#2ca02c", lw=1.2)
            if top != expected:
                ax.plot(span, [top] * 2, color="#2ca02c", lw=1.2, ls="--")
        ax.xaxis.set_major_locator(WeekdayLocator(byweekday=0))
        ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
        ax.set_ylabel("每日病例 daily cases")
        ax.set_ylim(bottom=0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="upper left", frameon=False, fontsize=8)
        ax.set_title(title, fontsize=10, loc="left")
        return _png(fig)


def render_age_sex(cases: pd.DataFrame, *, title: str) -> bytes:
    """Stacked bars of cases by age group and sex, as a PNG.

    Parameters
    ----------
    cases : pandas.DataFrame
        Visits with ``age_group`` (null: unknown) and ``sex``.
    title : str
        Title (Chinese allowed).

    Returns
    -------
    bytes
        The PNG.
    """
    groups = [*AGE_GROUPS, "不详"]
    ages = cases["age_group"].fillna("不详")
    with _style():
        fig = Figure(figsize=(3.6, 2.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        bottom = pd.Series(0, index=groups)
        for code, label, colour in SEXES:
            counts = ages[cases["sex"] == code].value_counts().reindex(groups, fill_value=0)
            if counts.sum():
                ax.bar(groups, counts, bottom=bottom, color=colour, label=label)
                bottom = bottom + counts
        ax.set_ylabel("病例 cases")
        ax.set_xlabel("年龄组 age group")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.spines[["top", "right"]].set_visible(False)
        if len(cases):
            ax.legend(frameon=False, fontsize=8)
        ax.set_title(title, fontsize=10, loc="left")
        return _png(fig)
