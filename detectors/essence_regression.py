"""ESSENCE's adaptive multiple regression, as CDC's Rnssp ``adaptive_regression`` computes it.

All series share the dates, so each evaluated day's design matrix (intercept, trend,
Monday…Saturday indicators over its baseline) is shared: it is factorised once per distinct
(baseline length, weekday of the first baseline day) and applied to every series. Sums run in a
fixed order over the baseline days, so a series' values do not depend on which other series or
days are evaluated with it. See :mod:`detectors.essence` for the method and its deviations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

MIN_BASELINE = 11
"""Rnssp's ``min_baseline`` in ``adaptive_regression``: 11 baseline days for 8 coefficients."""

_N_COEF = 8
_BUDGET = 1 << 22
"""Counts gathered per block of days (n_series × days × baseline length)."""


@dataclass(frozen=True)
class RegressionStats:
    """Regression results at the evaluated days (arrays are n_series × n_points)."""

    expected: NDArray[np.float64]
    """Forecast for the day, floored at 0."""
    threshold: NDArray[np.float64]
    """p < red exactly when the day's count exceeds this (before rounding error)."""
    score: NDArray[np.float64]
    p_value: NDArray[np.float64]
    adj_r_squared: NDArray[np.float64]
    valid: NDArray[np.bool_]
    """The day's count and all its baseline days are present."""


def _sequential_sum(terms: Iterable[NDArray[np.float64]]) -> NDArray[np.float64]:
    # Left-to-right, so the rounding is the same whatever the arrays' shapes (numpy's own
    # reductions switch between pairwise and sequential summation with the memory layout).
    # Terms are consumed one at a time to keep memory at two arrays.
    each = iter(terms)
    total = np.array(next(each), dtype=np.float64, copy=True)
    for term in each:
        total += term
    return total


def _design(length: int, weekday0: int) -> NDArray[np.float64]:
    """Rnssp's regression matrix: 1, day 1…L, Monday…Saturday indicators (Sunday = reference)."""
    weekday = (weekday0 + np.arange(length)) % 7
    x = np.zeros((length, _N_COEF))
    x[:, 0] = 1.0
    x[:, 1] = np.arange(1, length + 1)
    for day in range(6):
        x[:, 2 + day] = weekday == day
    return x


def _fit_block(
    windows: NDArray[np.float64], q: NDArray[np.float64], v: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Forecast, residual sum of squares and fitted sum of squares for windows (L, n, m)."""
    length = windows.shape[0]
    coef = _sequential_sum(q[j][:, None, None] * windows[j][None] for j in range(length))
    forecast = _sequential_sum(v[m] * coef[m] for m in range(_N_COEF))
    fitted = _sequential_sum(q[:, m][:, None, None] * coef[m][None] for m in range(_N_COEF))
    residual = windows - fitted
    rss = _sequential_sum(residual[j] * residual[j] for j in range(length))
    centre = _sequential_sum(iter(fitted)) / length
    spread = fitted - centre[None]
    mss = _sequential_sum(spread[j] * spread[j] for j in range(length))
    return forecast, rss, mss


def regression_statistics(
    counts: NDArray[np.float64],
    weekdays: NDArray[np.intp],
    points: NDArray[np.intp],
    *,
    b: int,
    g: int,
    red: float,
) -> RegressionStats:
    """Rnssp's ``adaptive_regression`` for every series at the days ``points`` (all ≥ 11 + g).

    Parameters
    ----------
    counts : ndarray, shape (n_series, n_times)
        Daily counts, NaN = missing.
    weekdays : ndarray of int, shape (n_times,)
        Day of week of each time point, Monday = 0.
    points : ndarray of int
        Sorted, unique time indices to evaluate, each ≥ ``MIN_BASELINE + g``.
    b, g : int
        Rnssp's ``B`` (multiple of 7, ≥ 14) and ``g``.
    red : float
        Level for :attr:`RegressionStats.threshold`.

    Returns
    -------
    RegressionStats
        Arrays of shape (n_series, len(points)).

    Notes
    -----
    Baseline ``y[t-g-L : t-g]``, L = min(B, t-g) ≥ 11, fitted by least squares on
    ``1, 1…L, Mon…Sat``; forecast ``ŷ = max(0, β₀ + (L+g+1) β₁ + β_dow(t))``;
    ``σ = max(sqrt(RSS/(L-8)) sqrt((L+7)(L-4) / (L(L-7))), 0.01 / q95(L-8))`` with q95 the
    95 % t quantile rounded to 5 decimals; ``T = (y_t - ŷ)/σ``, ``p = 1 - F_t(T; L-8)``;
    adjusted R² ``= 1 - (1 - MSS/(MSS+RSS)) (L-1)/(L-8)``, 0 when undefined. Threshold:
    ``ŷ + t_{1-red}(L-8) σ``.

    References
    ----------
    CDC Rnssp, ``R/alert_regression.R`` (``adaptive_regression``), commit ae5ba22.
    """
    n = counts.shape[0]
    k = len(points)
    out = {name: np.full((n, k), np.nan) for name in ("expected", "sigma", "r2", "count")}
    valid = np.zeros((n, k), dtype=bool)
    size_at = np.full(k, MIN_BASELINE, dtype=np.intp)
    length = np.minimum(b, points - g)
    start = points - g - length
    keys = length * 7 + weekdays[start] if k else np.zeros(0, dtype=np.intp)
    for key in np.unique(keys):
        cols = np.flatnonzero(keys == key)
        size, weekday0 = divmod(int(key), 7)
        x = _design(size, weekday0)
        q, r = np.linalg.qr(x)
        test_day = np.zeros(_N_COEF)
        test_day[0], test_day[1] = 1.0, size + g + 1
        test_weekday = (weekday0 + size + g) % 7
        if test_weekday < 6:
            test_day[2 + test_weekday] = 1.0
        v = np.linalg.solve(r.T, test_day)  # forecast = test_day · R⁻¹ Qᵀy = v · Qᵀy
        step = max(1, _BUDGET // max(1, n * size))
        for part in range(0, len(cols), step):
            sel = cols[part : part + step]
            index = start[sel][:, None] + np.arange(size)[None, :]
            windows = np.moveaxis(counts[:, index], 2, 0)  # (L, n, m), contiguous per day
            windows = np.ascontiguousarray(windows)
            forecast, rss, mss = _fit_block(windows, q, v)
            n_df = size - 8
            mse = (1 / n_df) * rss
            inflation = np.sqrt(((size + 7) * (size - 4)) / (size * (size - 7)))
            floor = 0.01 / np.round(special.stdtrit(n_df, 1 - 0.05), 5)
            out["sigma"][:, sel] = np.maximum(np.sqrt(mse) * inflation, floor)
            out["expected"][:, sel] = np.maximum(0.0, forecast)
            with np.errstate(invalid="ignore", divide="ignore"):
                r2 = mss / (rss + mss)
            adjusted = 1 - (1 - r2) * ((size - 1) / n_df)
            # Rnssp maps an undefined R² (0/0: constant baseline) to 0. Its QR leaves rounding
            # noise in place of the exact 0/0 for a non-zero constant baseline; decide exactly.
            constant = np.all(windows == windows[0][None], axis=0)
            out["r2"][:, sel] = np.where(np.isnan(adjusted) | constant, 0.0, adjusted)
            today = counts[:, points[sel]]
            out["count"][:, sel] = today
            valid[:, sel] = ~np.isnan(today) & ~np.isnan(windows).any(axis=0)
            size_at[sel] = size
    n_df_at = (size_at - 8).astype(np.float64)
    score = (out["count"] - out["expected"]) / out["sigma"]
    p_value = 1 - special.stdtr(n_df_at, score)  # Rnssp: 1 - pt(T)
    threshold = out["expected"] + special.stdtrit(n_df_at, 1 - red) * out["sigma"]
    for name in ("expected", "r2"):
        out[name][~valid] = np.nan
    return RegressionStats(
        expected=out["expected"],
        threshold=threshold,
        score=score,
        p_value=p_value,
        adj_r_squared=out["r2"],
        valid=valid,
    )


def suppression_limit(
    counts: NDArray[np.float64], weekdays: NDArray[np.intp], points: NDArray[np.intp]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Rnssp's post-hoc rule that withdraws regression alerts on days below recent levels.

    Returns ``below`` (the rule applies to the day's count: a red or yellow level there turns
    to none) and ``limit`` (the rule does not apply to a count ≥ limit; -inf when it never
    applies), both n_series × n_points.

    Notes
    -----
    Weekdays: the count is below the mean of the 7 days ending on it (``zoo::rollmean(k = 7,
    align = "right")``). Saturdays and Sundays: additionally below the mean of the same weekday
    over the 7 weeks ending on it; with fewer than 7 such weeks the rule does not apply. A
    missing count in either window (R's NA) means the rule does not apply. Below the 7-day mean
    ⇔ count < mean of the 6 days before, which gives ``limit``.

    References
    ----------
    CDC Rnssp, ``R/alert_regression.R`` (``alert_regression``), commit ae5ba22.
    """
    today = counts[:, points]
    before = _sequential_sum(counts[:, points - lag] for lag in range(6, 0, -1))
    below = today < (before + today) / 7
    limit = before / 6
    weekend = weekdays[points] >= 5
    reach = points >= 42
    if (weekend & reach).any():
        cols = np.flatnonzero(weekend & reach)
        same_day = _sequential_sum(counts[:, points[cols] - 7 * lag] for lag in range(6, 0, -1))
        below[:, cols] &= today[:, cols] < (same_day + today[:, cols]) / 7
        limit[:, cols] = np.minimum(limit[:, cols], same_day / 6)
    unreachable = weekend & ~reach
    below[:, unreachable] = False
    limit = np.where(np.isnan(limit), -np.inf, limit)
    limit[:, unreachable] = -np.inf
    return below, limit
