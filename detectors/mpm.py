"""CIDARS' moving percentile method (MPM), China CDC's routine outbreak-signal rule.

The count of the current period (the last 7 days, or the current week of a weekly series) is
compared with the same 7-day period and the periods one and two weeks either side of it in
each of the previous ``years`` years (5 windows a year: 15 to 25 historical values). A signal
is raised when the current count exceeds the ``percentile``-th percentile of those values.

Scale of the outputs: ``score`` is the current 7-day count, and ``expected`` (the median of the
historical 7-day counts) and ``upperbound`` (their percentile) are on the same 7-day scale, as
CIDARS reports them. So ``alarm`` is ``score > upperbound``, not ``count > upperbound``: the
daily ``count`` of a CLI output row is not the compared quantity. See ``docs/cidars.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from detectors.registry import register
from detectors.result import DetectorResult, build_result, evaluation_points
from detectors.series import CountSeries, Frequency, SeriesError

Float = NDArray[np.float64]
Index = NDArray[np.intp]

SHIFTS = np.arange(-2, 3)
"""Week shifts of the historical windows around the same period of an earlier year."""
WINDOW: dict[Frequency, int] = {"day": 7, "week": 1}
"""Time points summed into one period: 7 days, or the week itself."""
WEEK_STEP: dict[Frequency, int] = {"day": 7, "week": 1}
"""Time points in one week (the spacing of the shifted windows)."""
MIN_HISTORY = 5
"""Fewest complete historical windows (one year's worth) for a threshold."""
CHUNK_ELEMENTS = 1 << 22
"""Bound on series × points × windows held at once, so full-history runs fit in memory."""


@register("mpm", sparse=True, observed="score")
def detect_mpm(
    series: CountSeries,
    *,
    at: object | None = None,
    percentile: float = 80.0,
    years: int = 3,
) -> DetectorResult:
    """CIDARS moving percentile method: current 7-day count above a percentile of past years.

    Parameters
    ----------
    series : CountSeries
        Daily or weekly counts, one or many series.
    at : index array or slice, optional
        Time points to evaluate (default: all with enough history).
    percentile : float
        Percentile P (0–100) of the historical 7-day counts used as the threshold; China CDC
        recommends P50–P80 depending on the disease (default 80).
    years : int
        Years of history (3–5; default 3), five windows each.

    Returns
    -------
    DetectorResult
        ``score``: current 7-day count; ``expected``: median of the historical 7-day counts;
        ``upperbound``: their P-th percentile; ``alarm``: ``score > upperbound``;
        ``p_value``: NaN (the method defines none); ``extras["n_history"]``: complete
        historical windows used.

    Raises
    ------
    SeriesError
        ``percentile`` outside 0–100 or ``years`` outside 3–5.

    Notes
    -----
    For a daily series and day :math:`t` let :math:`S(e) = \\sum_{j=0}^{6} y_{e-j}` be the
    7-day count ending on day :math:`e`. The current value is :math:`S(t)`; the historical
    values are :math:`S(a_k + 7w)` for :math:`k = 1..K` (``years``) and
    :math:`w \\in \\{-2,-1,0,1,2\\}`, where :math:`a_k` is the same calendar date :math:`k`
    years before :math:`t` (29 February maps to 28 February), 365 or 366 days earlier. For a
    weekly series the period is one week and :math:`a_k = t - 52k` weeks (by position, as in
    R ``surveillance``). The threshold is the type-7 sample quantile (numpy's "linear",
    R's default, Excel's PERCENTILE) of the :math:`5K` values,
    :math:`U = x_{(\\lfloor h \\rfloor + 1)} + (h - \\lfloor h \\rfloor)(x_{(\\lfloor h
    \\rfloor + 2)} - x_{(\\lfloor h \\rfloor + 1)})` with :math:`h = (m-1)P/100`.
    A signal is raised when :math:`S(t) > U`. A point is computed when every window lies in
    the data; windows with a missing day are left out of the reference set, and at least 5
    complete ones are needed. A current window with a missing day gives a NaN score and no
    alarm.

    References
    ----------
    Yang W, Li Z, Lan Y, et al. A nationwide web-based automated system for outbreak early
    detection and rapid response in China. Western Pac Surveill Response J 2011;2(1):10-15.
    doi:10.5365/wpsar.2010.1.1.009

    Zhang H, Li Z, Lai S, et al. Evaluation of the performance of a dengue outbreak detection
    tool for China. PLoS One 2014;9(8):e106144. doi:10.1371/journal.pone.0106144

    Li Z, Lai S, Zhang H, et al. Hand, foot and mouth disease in China: evaluating an
    automated system for the detection of outbreaks. Bull World Health Organ 2014;92:656-663.
    doi:10.2471/BLT.13.130666
    """
    _check_params(percentile, years)
    params = {"percentile": float(percentile), "years": int(years)}
    shape = series.counts.shape
    expected = np.full(shape, np.nan)
    upper = np.full(shape, np.nan)
    score = np.full(shape, np.nan)
    n_history = np.zeros(shape, dtype=np.int64)
    computed = np.zeros(shape, dtype=bool)

    points = evaluation_points(series, at, first=0)
    ends = history_ends(series, points, years)
    window = WINDOW[series.freq]
    inside = ends.min(axis=1) - (window - 1) >= 0
    points, ends = points[inside], ends[inside]

    per_chunk = max(1, CHUNK_ELEMENTS // max(1, series.n_series * ends.shape[1]))
    for start in range(0, len(points), per_chunk):
        cols = points[start : start + per_chunk]
        sums = window_sums(series.counts, ends[start : start + per_chunk], window)
        history = sums[..., 1:]
        complete = np.isfinite(history).sum(axis=-1)
        ok = complete >= MIN_HISTORY
        score[:, cols] = sums[..., 0]
        expected[:, cols] = type7_percentile(history, 50.0)
        upper[:, cols] = type7_percentile(history, percentile)
        n_history[:, cols] = complete
        computed[:, cols] = ok

    alarm = computed & (score > upper)
    return build_result(
        series,
        "mpm",
        params,
        expected=expected,
        upperbound=upper,
        alarm=alarm,
        computed=computed,
        score=score,
        p_value=None,
        extras={"n_history": np.where(computed, n_history, 0)},
    )


def _check_params(percentile: float, years: int) -> None:
    if not np.isfinite(percentile) or not 0.0 <= percentile <= 100.0:
        raise SeriesError(f"percentile must be between 0 and 100; got {percentile}")
    if int(years) != years or not 3 <= years <= 5:
        raise SeriesError(f"years must be 3, 4 or 5 (CIDARS uses 3-5 years); got {years}")


def history_ends(series: CountSeries, points: Index, years: int) -> Index:
    """Last time index of the current window and of the historical windows of each point.

    Returns an array (len(points), 1 + 5·years): column 0 is the point itself, then for
    each year back k = 1..years the windows shifted by -2..+2 weeks around the same period.
    Indices may be negative where the history is not in the data.
    """
    step = WEEK_STEP[series.freq]
    lags = np.empty((len(points), years), dtype=np.intp)
    for k in range(1, years + 1):
        lags[:, k - 1] = _year_lag(series, points, k)
    anchors = points[:, None] - lags  # (m, years)
    shifted = anchors[:, :, None] + step * SHIFTS[None, None, :]  # (m, years, 5)
    return np.concatenate([points[:, None], shifted.reshape(len(points), -1)], axis=1)


def _year_lag(series: CountSeries, points: Index, k: int) -> Index:
    """Time points back to the same period k years earlier.

    Daily: the same calendar date (CIDARS aligns by calendar period; 29 February maps to
    28 February), so 365·k plus the leap days in between. A 7-day sum covers each weekday
    once, so keeping the weekday (364 days) buys nothing and would drift 1–2 days a year.
    Weekly: 52·k weeks by position, as R ``surveillance`` counts weekly years.
    """
    if series.freq == "week":
        return np.full(len(points), 52 * k, dtype=np.intp)
    when = series.dates[points]
    before = when - pd.DateOffset(years=k)
    return np.asarray((when - before).days, dtype=np.intp)


def window_sums(counts: Float, ends: Index, window: int) -> Float:
    """Sums of ``window`` consecutive counts ending at each of ``ends``: (n_series, *ends.shape).

    Added in a fixed order, one term at a time, so equal windows give bit-identical sums
    (a constant series compares equal to its history) and each series' result does not
    depend on the others. A window with a missing value sums to NaN.
    """
    unique, inverse = np.unique(ends, return_inverse=True)
    total = counts[:, unique - (window - 1)].copy()
    for j in range(window - 2, -1, -1):
        total += counts[:, unique - j]
    return total[:, inverse.reshape(ends.shape)]


def type7_percentile(values: Float, q: float) -> Float:
    """The q-th percentile (0–100) over the last axis, type 7, ignoring NaN.

    Type 7 (R's default, numpy's "linear", Excel's PERCENTILE): with the m sorted non-missing
    values and h = (m-1)·q/100, interpolate linearly between the values at ranks floor(h) and
    floor(h)+1. Written out (rather than ``np.nanpercentile``) so it stays vectorised with
    missing values and returns exactly x when all values equal x. NaN where nothing is left.
    """
    ordered = np.sort(values, axis=-1)  # NaN sorts last
    m = np.isfinite(ordered).sum(axis=-1)
    h = np.maximum(m - 1, 0) * (q / 100.0)
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
    low = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0]
    out = low + (h - lo) * (high - low)
    return np.where(m > 0, out, np.nan)
