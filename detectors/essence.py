"""ESSENCE's EWMA, adaptive multiple regression and regression/EWMA switch, as in CDC's Rnssp.

Three daily detectors of NSSP-ESSENCE, following Rnssp's ``alert_ewma``, ``alert_regression``
and ``alert_switch`` (GitHub CDCgov/Rnssp; ``R/alert_ewma.R`` at 50b4761,
``R/alert_regression.R`` at ae5ba22, ``R/alert_switch.R`` at e997541):

- ``ewma``: two exponentially weighted moving averages (w1 = 0.4 for gradual, w2 = 0.9 for
  sudden rises) compared with the mean of a 28-day baseline that ends g = 2 days before the day;
  the smaller one-sided t-test p-value (L-1 df) wins.
- ``regression``: least squares on the baseline (trend + Monday…Saturday terms), forecast for the
  day, one-sided t-test (L-8 df) of the standardised residual.
- ``switch``: the regression where its adjusted R² ≥ 0.60, the EWMA elsewhere.

Levels as Rnssp's: red when p < ``red`` (0.01), yellow when ``red`` ≤ p < ``yellow`` (0.05),
else none (Rnssp's "blue"); days without enough baseline are not computed (Rnssp's "grey").
``alarm`` is red. ``expected`` is the baseline mean (EWMA) or the forecast (regression),
``score`` the test statistic, ``p_value`` Rnssp's ``1 - pt(T, df)``, ``upperbound`` the count
above which the day is red, so ``alarm ⇔ count > upperbound`` at computed points. ``extras``
(int8 codes, -1 where not computed, to keep 10,000 × 1,000-day results small): ``level``
(:data:`LEVELS`: 0 none, 1 yellow, 2 red), ``method`` (switch; :data:`SUB_METHODS`: 0 EWMA,
1 regression); floats ``adj_r_squared`` and booleans ``suppressed`` (regression, switch).

**Exception to p < red (as in Rnssp).** Rnssp's ``alert_regression`` withdraws a red or yellow
level when the day's count is below the mean of the 7 days ending on it (on Saturdays and
Sundays only if it is also below the mean of the same weekday over the last 7 weeks). So with
``suppress_below_ma7=True`` (default) a regression day can have p < red and no alarm
(``extras["suppressed"]``); ``upperbound`` includes the rule, keeping ``alarm ⇔ count >
upperbound``. The switch inherits the rule on its regression days, as Rnssp's does.

Deviations from Rnssp (also in ``docs/essence.md``):

1. Rnssp rescales a series whose values are all below 1 (percentages) by the median of its
   positive values, taken over the whole series; that uses future data and never applies to
   counts (a positive count is ≥ 1), so it is left out.
2. Missing counts (Rnssp has no rule: NA propagates or ``lm.fit`` fails): a day whose count or
   any baseline day is missing is not computed; the EWMA keeps its state over a missing day;
   the suppression rule treats a missing day in its windows as R's NA (rule does not apply).
3. Rnssp refuses series shorter than B + g + 1 days; here every day with enough baseline is
   computed (EWMA from day 7 + g, regression from day 11 + g, 0-based), whatever the length.
4. A constant regression baseline has R² = 0/0, which Rnssp maps to 0 (EWMA in the switch);
   R's QR leaves rounding noise for a non-zero constant, so Rnssp's R² there is arbitrary.
   Here such a baseline gets exactly 0.
5. ``red``, ``yellow`` and the switch's ``min_adj_r_squared`` are parameters (Rnssp hard-codes
   0.01, 0.05 and 0.60); the EWMA's internal limits (clipping at the 99 % t quantile, the 95 %
   quantile in its sigma terms) stay as in Rnssp whatever ``red``/``yellow`` are.
6. The suppression rule can be switched off (``suppress_below_ma7=False``).
7. Regression and switch need daily data and ``b`` ≥ 14 (Rnssp's code fails for B = 7 and for
   weekly data); the EWMA also runs on weekly series.

Cost: the regression costs one least-squares forecast per series and evaluated day. The EWMA's
clipping makes each day's state depend on all earlier days, so its recursion runs from the
first day to the last evaluated day (vectorised across series); only the evaluated days get
p-values.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detectors.essence_common import (
    EWMA,
    LEVELS,
    NONE,
    REGRESSION,
    SUB_METHODS,
    Array,
    Codes,
    check_common,
    check_regression,
    check_weights,
    finish,
    just_below,
    levels_of,
)
from detectors.essence_ewma import MIN_BASELINE as EWMA_MIN_BASELINE
from detectors.essence_ewma import ewma_statistics
from detectors.essence_regression import MIN_BASELINE as REGRESSION_MIN_BASELINE
from detectors.essence_regression import regression_statistics, suppression_limit
from detectors.registry import register
from detectors.result import DetectorResult, evaluation_points
from detectors.series import CountSeries, SeriesError

__all__ = ["LEVELS", "SUB_METHODS", "detect_ewma", "detect_regression", "detect_switch"]


@register("ewma", sparse=True)
def detect_ewma(
    series: CountSeries,
    *,
    at: object | None = None,
    b: int = 28,
    g: int = 2,
    w1: float = 0.4,
    w2: float = 0.9,
    red: float = 0.01,
    yellow: float = 0.05,
) -> DetectorResult:
    """ESSENCE EWMA (Rnssp ``alert_ewma``): dual-weight EWMA against a guarded 28-day baseline.

    Parameters
    ----------
    series : CountSeries
        Daily (or weekly) counts, one or many series.
    at : indices, slice or None
        Time points to evaluate (None: all); needs 7 + g earlier days.
    b : int
        Baseline length (Rnssp ``B``), ≥ 7; shorter baselines are used until b days exist.
    g : int
        Guard band (Rnssp ``g``): days between the baseline and the tested day.
    w1, w2 : float
        Smoothing weights for gradual and sudden rises (Rnssp ``w1``, ``w2``).
    red, yellow : float
        p-value levels of an alert (red, the alarm) and a warning (yellow).

    Returns
    -------
    DetectorResult
        ``expected`` baseline mean, ``score`` test statistic, ``p_value``, ``upperbound`` the
        count above which the day is red; ``extras["level"]``.

    Notes
    -----
    With baseline mean μ and sd s over L = min(b, t-g) days ending g days before t:
    ``z_k(t) = w_k y_t + (1-w_k) z_k(t-1)``, ``T_k = (z_k - μ)/σ_k``, ``σ_k = max(floor_k,
    s c_k + a_k)``, ``p = min_k 1 - F_t(T_k; L-1)``; ``z_k`` is clipped to ``μ ± q99 σ_k``
    after an extreme day. Constants in :func:`detectors.essence_ewma.ewma_statistics`.
    Sparse series: Rnssp recommends the EWMA for small counts; after an all-zero baseline the
    floor of σ is small, so a single case is red (as in Rnssp).

    References
    ----------
    CDC, Rnssp ``alert_ewma`` (R/alert_ewma.R, commit 50b4761). Burkom, H. S. et al. (2008),
    "Developments in the roles, features, and evaluation of alerting algorithms for disease
    outbreak monitoring", Johns Hopkins APL Technical Digest 27(4).
    """
    check_common(b, g, red, yellow)
    check_weights(w1, w2)
    params: dict[str, object] = {"b": b, "g": g, "w1": w1, "w2": w2, "red": red, "yellow": yellow}
    points = evaluation_points(series, at, EWMA_MIN_BASELINE + g)
    stats = ewma_statistics(series.counts, points, b=b, g=g, w1=w1, w2=w2, red=red)
    return finish(
        series,
        "ewma",
        params,
        points,
        expected=stats.expected,
        threshold=stats.threshold,
        score=stats.score,
        p_value=stats.p_value,
        level=levels_of(stats.p_value, red, yellow),
        valid=stats.valid,
        extras={},
    )


def _regression_levels(
    series: CountSeries,
    points: NDArray[np.intp],
    p_value: Array,
    threshold: Array,
    *,
    red: float,
    yellow: float,
    suppress: bool,
) -> tuple[Codes, Array, NDArray[np.bool_]]:
    """Levels, threshold and suppressed flags with Rnssp's below-7-day-mean rule."""
    level = levels_of(p_value, red, yellow)
    if not suppress:
        return level, threshold, np.zeros(level.shape, dtype=bool)
    weekdays = series.dates.day_of_week.to_numpy()
    below, limit = suppression_limit(series.counts, weekdays, points)
    suppressed = below & (level != NONE)
    level = np.where(suppressed, NONE, level).astype(np.int8)
    # Red needs count > threshold and count ≥ limit.
    threshold = np.where(threshold >= limit, threshold, just_below(limit))
    return level, threshold, suppressed


@register("regression", sparse=False)
def detect_regression(
    series: CountSeries,
    *,
    at: object | None = None,
    b: int = 28,
    g: int = 2,
    red: float = 0.01,
    yellow: float = 0.05,
    suppress_below_ma7: bool = True,
) -> DetectorResult:
    """ESSENCE adaptive multiple regression (Rnssp ``alert_regression``): trend + day of week.

    Parameters
    ----------
    series : CountSeries
        Daily counts, one or many series.
    at : indices, slice or None
        Time points to evaluate (None: all); needs 11 + g earlier days.
    b : int
        Baseline length (Rnssp ``B``): a multiple of 7, ≥ 14.
    g : int
        Guard band (Rnssp ``g``).
    red, yellow : float
        p-value levels of an alert (red, the alarm) and a warning (yellow).
    suppress_below_ma7 : bool
        Apply Rnssp's rule withdrawing alerts on days below their 7-day mean (see module).

    Returns
    -------
    DetectorResult
        ``expected`` forecast, ``score`` t statistic, ``p_value``, ``upperbound``;
        ``extras``: ``level``, ``adj_r_squared``, ``suppressed``.

    Notes
    -----
    Least squares on the L = min(b, t-g) baseline days ending g days before t with intercept,
    trend 1…L and Monday…Saturday indicators; ``ŷ = max(0, forecast at L+g+1)``;
    ``σ = max(sqrt(RSS/(L-8)) sqrt((L+7)(L-4)/(L(L-7))), 0.01/q95(L-8))``;
    ``T = (y - ŷ)/σ``, ``p = 1 - F_t(T; L-8)``. No holiday terms (as Rnssp).

    References
    ----------
    CDC, Rnssp ``alert_regression`` (R/alert_regression.R, commit ae5ba22). Fricker, R. D.
    (2013), Introduction to Statistical Methods for Biosurveillance, Cambridge UP.
    """
    check_common(b, g, red, yellow)
    check_regression(series, b)
    params: dict[str, object] = {
        "b": b,
        "g": g,
        "red": red,
        "yellow": yellow,
        "suppress_below_ma7": suppress_below_ma7,
    }
    points = evaluation_points(series, at, REGRESSION_MIN_BASELINE + g)
    weekdays = series.dates.day_of_week.to_numpy()
    stats = regression_statistics(series.counts, weekdays, points, b=b, g=g, red=red)
    level, threshold, suppressed = _regression_levels(
        series,
        points,
        stats.p_value,
        stats.threshold,
        red=red,
        yellow=yellow,
        suppress=suppress_below_ma7,
    )
    return finish(
        series,
        "regression",
        params,
        points,
        expected=stats.expected,
        threshold=threshold,
        score=stats.score,
        p_value=stats.p_value,
        level=level,
        valid=stats.valid,
        extras={"adj_r_squared": stats.adj_r_squared, "suppressed": suppressed & stats.valid},
    )


@register("switch", sparse=True)
def detect_switch(
    series: CountSeries,
    *,
    at: object | None = None,
    b: int = 28,
    g: int = 2,
    w1: float = 0.4,
    w2: float = 0.9,
    red: float = 0.01,
    yellow: float = 0.05,
    min_adj_r_squared: float = 0.60,
    suppress_below_ma7: bool = True,
) -> DetectorResult:
    """ESSENCE regression/EWMA switch (Rnssp ``alert_switch``): regression if it fits, else EWMA.

    Parameters
    ----------
    series : CountSeries
        Daily counts, one or many series.
    at : indices, slice or None
        Time points to evaluate (None: all); needs 7 + g earlier days.
    b, g : int
        Baseline length (multiple of 7, ≥ 14) and guard band (Rnssp ``B``, ``g``).
    w1, w2 : float
        EWMA smoothing weights.
    red, yellow : float
        p-value levels of an alert (red, the alarm) and a warning (yellow).
    min_adj_r_squared : float
        The regression is used where its adjusted R² ≥ this (Rnssp: 0.60).
    suppress_below_ma7 : bool
        Rnssp's below-7-day-mean rule on regression days (see module).

    Returns
    -------
    DetectorResult
        As the chosen method's; ``extras``: ``level``, ``method``, ``adj_r_squared``,
        ``suppressed``.

    Notes
    -----
    Day t uses the regression when its baseline fit exists (t ≥ 11 + g, all baseline days
    present) and has adjusted R² ≥ ``min_adj_r_squared``; otherwise the EWMA (so days
    7 + g … 10 + g are always EWMA). Sparse series: low R² sends them to the EWMA, which Rnssp
    describes as suited to sparse county-level series.

    References
    ----------
    CDC, Rnssp ``alert_switch`` (R/alert_switch.R, commit e997541).
    """
    check_common(b, g, red, yellow)
    check_weights(w1, w2)
    check_regression(series, b)
    if not 0 <= min_adj_r_squared <= 1:
        raise SeriesError(f"min_adj_r_squared must be in [0, 1]; got {min_adj_r_squared!r}")
    params: dict[str, object] = {
        "b": b,
        "g": g,
        "w1": w1,
        "w2": w2,
        "red": red,
        "yellow": yellow,
        "min_adj_r_squared": min_adj_r_squared,
        "suppress_below_ma7": suppress_below_ma7,
    }
    points = evaluation_points(series, at, EWMA_MIN_BASELINE + g)
    ewma = ewma_statistics(series.counts, points, b=b, g=g, w1=w1, w2=w2, red=red)
    shape = ewma.expected.shape
    reg_cols = np.flatnonzero(points >= REGRESSION_MIN_BASELINE + g)
    weekdays = series.dates.day_of_week.to_numpy()
    fit = regression_statistics(series.counts, weekdays, points[reg_cols], b=b, g=g, red=red)
    reg = {name: np.full(shape, np.nan) for name in ("expected", "threshold", "score", "p")}
    r2 = np.full(shape, np.nan)
    reg_level = np.full(shape, NONE, dtype=np.int8)
    suppressed = np.zeros(shape, dtype=bool)
    reg["expected"][:, reg_cols] = fit.expected
    reg["score"][:, reg_cols] = fit.score
    reg["p"][:, reg_cols] = fit.p_value
    r2[:, reg_cols] = fit.adj_r_squared
    level_r, threshold_r, suppressed_r = _regression_levels(
        series,
        points[reg_cols],
        fit.p_value,
        fit.threshold,
        red=red,
        yellow=yellow,
        suppress=suppress_below_ma7,
    )
    reg_level[:, reg_cols] = level_r
    reg["threshold"][:, reg_cols] = threshold_r
    use_reg = np.zeros(shape, dtype=bool)
    use_reg[:, reg_cols] = fit.valid & (fit.adj_r_squared >= min_adj_r_squared)
    suppressed[:, reg_cols] = suppressed_r
    method = np.where(use_reg, REGRESSION, EWMA).astype(np.int8)
    return finish(
        series,
        "switch",
        params,
        points,
        expected=np.where(use_reg, reg["expected"], ewma.expected),
        threshold=np.where(use_reg, reg["threshold"], ewma.threshold),
        score=np.where(use_reg, reg["score"], ewma.score),
        p_value=np.where(use_reg, reg["p"], ewma.p_value),
        level=np.where(use_reg, reg_level, levels_of(ewma.p_value, red, yellow)).astype(np.int8),
        valid=use_reg | ewma.valid,
        extras={
            "method": np.where(use_reg | ewma.valid, method, -1).astype(np.int8),
            "adj_r_squared": r2,
            "suppressed": suppressed & use_reg,
        },
    )
