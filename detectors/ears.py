"""EARS C1, C2 and C3 (CDC's Early Aberration Reporting System), as R ``surveillance::earsC``.

Each method compares today's count with the mean and standard deviation of a short sliding
baseline of recent days (7 by default): C1 uses the days just before, C2 leaves a 2-day gap,
C3 adds up C2 excesses of the previous two days. Values match ``earsC`` of surveillance
1.20.3 (parity with its output is tested on R goldens, see
``tests/detectors/reference/ears_cusum.R``), including where R deviates from its own
documentation:

- the alarm is ``count > upperbound`` (strictly; the R help says ``>=``);
- C3's upper bound is ``max(0, y_t + s_t (z - S_t))`` with ``S_t`` the C2 excesses of the two
  previous days only (R's code; the help writes the baseline mean instead of ``y_t``), so
  C3 alarms exactly when ``S_t > z`` and the count is positive;
- C3's default ``alpha`` is 0.025 (R uses it when only the method is given), C1/C2's 0.001.

Missing counts (NaN) propagate as in R: a baseline with a missing day gives no upper bound,
so the point is not computed; a missing count on the day itself gives no alarm (and, for C3,
no upper bound). Where R divides 0 by 0 (constant baseline, ``min_sigma = 0``) its C2 is NaN
and C3 has no bound for the next two days either: such points are not computed, like R.
C1/C2 do have a bound there (the baseline mean); their ``score`` is then +-inf (or NaN for
0/0). No p-value is reported (R defines none).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from detectors.registry import register
from detectors.result import DetectorResult, build_result, evaluation_points
from detectors.series import CountSeries, SeriesError

EarsMethod = Literal["C1", "C2", "C3"]
FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]

# Lag of the newest baseline day: C1 uses the days just before, C2 and C3 skip two days.
NEWEST_LAG: dict[EarsMethod, int] = {"C1": 1, "C2": 3, "C3": 3}
# History before the first evaluable point, beyond the baseline (C3 needs C2 two days back).
EXTRA_HISTORY: dict[EarsMethod, int] = {"C1": 0, "C2": 2, "C3": 4}
# Series per block so the working arrays of a block stay in cache (about twice as fast as
# whole-array operations on 500 x 1095 counts).
BLOCK_ELEMENTS = 1 << 15


@register("ears_c1", sparse=True)
def detect_ears_c1(
    series: CountSeries,
    *,
    at: object | None = None,
    baseline: int = 7,
    alpha: float = 0.001,
    min_sigma: float = 0.0,
) -> DetectorResult:
    """EARS C1: today's count against the mean and sd of the ``baseline`` days before.

    Parameters
    ----------
    series : CountSeries
        Counts, one or many series.
    at : index array, slice or None
        Time points to evaluate (None: all from index ``baseline`` on).
    baseline : int
        Days in the sliding baseline (R's ``baseline``, at least 3).
    alpha : float
        One-sided level: the bound is the ``1 - alpha`` normal quantile.
    min_sigma : float
        Floor of the baseline standard deviation (R's ``minSigma``; 0.5 or 1 for sparse
        series, as Burkom suggests).

    Returns
    -------
    DetectorResult
        ``expected`` baseline mean, ``upperbound``, ``score`` the C1 statistic,
        ``alarm`` = count > upperbound; no p-value (R defines none).

    Notes
    -----
    With :math:`\\bar y_t` and :math:`s_t` the mean and sample standard deviation of
    :math:`y_{t-b}, \\dots, y_{t-1}` and :math:`\\sigma_t = \\max(s_t, \\sigma_{min})`:

    .. math:: C_1(t) = (y_t - \\bar y_t) / \\sigma_t, \\qquad
              U_t = \\bar y_t + z_{1-\\alpha} \\sigma_t .

    References
    ----------
    R ``surveillance::earsC(sts, control = list(method = "C1"))``, surveillance 1.20.3.
    Fricker, Hegler and Dunfee (2008), Comparing syndromic surveillance detection methods:
    EARS' versus a CUSUM-based methodology, Statistics in Medicine 27:3407-3429.
    """
    return _detect(series, at, "C1", baseline, alpha, min_sigma)


@register("ears_c2", sparse=True)
def detect_ears_c2(
    series: CountSeries,
    *,
    at: object | None = None,
    baseline: int = 7,
    alpha: float = 0.001,
    min_sigma: float = 0.0,
) -> DetectorResult:
    """EARS C2: like C1 with a 2-day gap between the baseline and today.

    Parameters
    ----------
    series : CountSeries
        Counts, one or many series.
    at : index array, slice or None
        Time points to evaluate (None: all from index ``baseline + 2`` on).
    baseline : int
        Days in the sliding baseline (at least 3).
    alpha : float
        One-sided level of the normal quantile.
    min_sigma : float
        Floor of the baseline standard deviation (R's ``minSigma``).

    Returns
    -------
    DetectorResult
        As :func:`detect_ears_c1`, with the C2 statistic as ``score``.

    Notes
    -----
    As C1 with the baseline :math:`y_{t-b-2}, \\dots, y_{t-3}`:

    .. math:: C_2(t) = (y_t - \\bar y^{(2)}_t) / \\sigma^{(2)}_t, \\qquad
              U_t = \\bar y^{(2)}_t + z_{1-\\alpha} \\sigma^{(2)}_t .

    References
    ----------
    R ``surveillance::earsC(sts, control = list(method = "C2"))``, surveillance 1.20.3.
    Hutwagner et al. (2003), The bioterrorism preparedness and response Early Aberration
    Reporting System (EARS), Journal of Urban Health 80:i89-i96.
    """
    return _detect(series, at, "C2", baseline, alpha, min_sigma)


@register("ears_c3", sparse=True)
def detect_ears_c3(
    series: CountSeries,
    *,
    at: object | None = None,
    baseline: int = 7,
    alpha: float = 0.025,
    min_sigma: float = 0.0,
) -> DetectorResult:
    """EARS C3: C2 excesses of the two previous days, with R's upper bound.

    Parameters
    ----------
    series : CountSeries
        Counts, one or many series.
    at : index array, slice or None
        Time points to evaluate (None: all from index ``baseline + 4`` on).
    baseline : int
        Days in the sliding C2 baseline (at least 3).
    alpha : float
        One-sided level of the normal quantile (R's C3 default 0.025).
    min_sigma : float
        Floor of the baseline standard deviation (R's ``minSigma``).

    Returns
    -------
    DetectorResult
        ``expected`` C2 baseline mean of today, ``upperbound`` R's C3 bound, ``score``
        :math:`S_t` (the statistic R's alarm compares with :math:`z_{1-\\alpha}`),
        ``alarm`` = count > upperbound; ``extras["c2"]`` today's C2 statistic.

    Notes
    -----
    With :math:`C_2` and :math:`\\sigma^{(2)}_t` as in :func:`detect_ears_c2`,

    .. math:: S_t = \\max(0, C_2(t-2) - 1) + \\max(0, C_2(t-1) - 1), \\qquad
              U_t = \\max\\bigl(0,\\ y_t + \\sigma^{(2)}_t (z_{1-\\alpha} - S_t)\\bigr),

    as R's code computes it (its help page writes :math:`\\bar y^{(2)}_t` for
    :math:`y_t`; the CDC's C3 also adds today's excess). Hence the alarm
    :math:`y_t > U_t` holds exactly when :math:`S_t > z_{1-\\alpha}` and :math:`y_t > 0`
    (for :math:`\\sigma^{(2)}_t > 0`).

    References
    ----------
    R ``surveillance::earsC(sts, control = list(method = "C3"))``, surveillance 1.20.3.
    Salmon, Schumacher and Höhle (2016), Monitoring count time series in R: aberration
    detection in public health surveillance, Journal of Statistical Software 70(10).
    """
    return _detect(series, at, "C3", baseline, alpha, min_sigma)


class _Block(NamedTuple):
    """Values of one block of series at the evaluated points (rows x points)."""

    expected: FloatArray
    upperbound: FloatArray
    score: FloatArray
    c2: FloatArray | None = None


def _detect(
    series: CountSeries,
    at: object | None,
    method: EarsMethod,
    baseline: int,
    alpha: float,
    min_sigma: float,
) -> DetectorResult:
    """Evaluate ``method`` block by block of series, writing into full-size arrays."""
    _check_params(baseline, alpha, min_sigma)
    params = {"baseline": baseline, "alpha": alpha, "min_sigma": min_sigma}
    points = evaluation_points(series, at, baseline + EXTRA_HISTORY[method])
    counts = series.counts
    z = float(ndtri(1.0 - alpha))
    # a run of consecutive points is written through views, not scattered
    columns: slice | IndexArray = points
    if _is_contiguous(points):
        columns = slice(int(points[0]), int(points[-1]) + 1)
    expected, upperbound, score = (_blank(counts.shape, columns) for _ in range(3))
    c2 = _blank(counts.shape, columns) if method == "C3" else None
    if len(points):
        # C3 needs C2 today and on the two previous days of every evaluated point
        needed = points
        if method == "C3":
            needed = np.unique(np.concatenate([points - 2, points - 1, points]))
        rows = max(1, BLOCK_ELEMENTS // len(needed))
        for lo in range(0, series.n_series, rows):
            block = counts[lo : lo + rows]
            if method == "C3":
                values = _c3_block(block, points, needed, baseline, z, min_sigma)
            else:
                values = _shewhart_block(block, points, baseline, NEWEST_LAG[method], z, min_sigma)
            expected[lo : lo + rows, columns] = values.expected
            upperbound[lo : lo + rows, columns] = values.upperbound
            score[lo : lo + rows, columns] = values.score
            if c2 is not None and values.c2 is not None:
                c2[lo : lo + rows, columns] = values.c2
    with np.errstate(invalid="ignore"):
        alarm = np.greater(counts, upperbound)  # R: observed > upperbound; NaN: no alarm
    return build_result(
        series,
        f"ears_{method.lower()}",
        params,
        expected=expected,
        upperbound=upperbound,
        alarm=alarm,
        computed=np.isfinite(upperbound),
        score=score,
        extras={} if c2 is None else {"c2": c2},
        owned=True,
    )


def _shewhart_block(
    block: FloatArray,
    points: IndexArray,
    baseline: int,
    newest_lag: int,
    z: float,
    min_sigma: float,
) -> _Block:
    """C1/C2: baseline mean, ``mean + z sigma`` and ``(y - mean) / sigma``."""
    mean, sigma = window_moments(block, points, baseline, newest_lag)
    np.maximum(sigma, min_sigma, out=sigma)
    bound = z * sigma
    bound += mean
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = _lagged(block, points, 0) - mean
        statistic /= sigma
    return _Block(mean, bound, statistic)


def _c3_block(
    block: FloatArray,
    points: IndexArray,
    needed: IndexArray,
    baseline: int,
    z: float,
    min_sigma: float,
) -> _Block:
    """C3 as R's earsC computes it, from C2 at ``needed`` (each point and the 2 days before)."""
    mean, sigma = window_moments(block, needed, baseline, NEWEST_LAG["C3"])
    np.maximum(sigma, min_sigma, out=sigma)
    observed = _lagged(block, needed, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = (observed - mean) / sigma
    today: slice | IndexArray
    lag1: slice | IndexArray
    lag2: slice | IndexArray
    if _is_contiguous(points):  # then ``needed`` runs from points[0] - 2 to points[-1]
        today, lag1, lag2 = slice(2, None), slice(1, -1), slice(0, -2)
    else:
        today = np.searchsorted(needed, points)
        lag1 = np.searchsorted(needed, points - 1)
        lag2 = np.searchsorted(needed, points - 2)
    # Same operations and order as R, so NaN and infinity (0/0, x/0) propagate as there.
    excess = np.maximum(0.0, c2[:, lag2] - 1.0) + np.maximum(0.0, c2[:, lag1] - 1.0)
    with np.errstate(invalid="ignore"):
        bound = np.maximum(0.0, observed[:, today] + sigma[:, today] * (z - excess))
    return _Block(mean[:, today], bound, excess, c2[:, today])


def window_moments(
    counts: FloatArray, points: IndexArray, baseline: int, newest_lag: int
) -> tuple[FloatArray, FloatArray]:
    """Mean and sample standard deviation of the ``baseline`` values before each point.

    The window of point ``t`` is ``counts[:, t - newest_lag - baseline + 1 : t - newest_lag
    + 1]``. Series of whole numbers (the usual case) take exact sums of values and squares
    (about 1.5x faster); other series (fractions, missing values, huge counts) take the
    two-pass formula over shifted copies. Both give R's values to rounding and an exact 0
    for a constant window (cumulative sums of floats would not). A series' path depends
    only on its own counts, so its values are the same alone or among others, and for any
    choice of ``points``.

    Returns
    -------
    mean, sd : ndarray, shape (n_series, len(points))
        NaN where the window holds a missing count.
    """
    exact = _exact_rows(counts, baseline)
    if exact.all():
        return _exact_moments(counts, points, baseline, newest_lag)
    mean = np.empty((counts.shape[0], len(points)))
    sd = np.empty_like(mean)
    if exact.any():
        mean[exact], sd[exact] = _exact_moments(counts[exact], points, baseline, newest_lag)
    rest = ~exact
    mean[rest], sd[rest] = _two_pass_moments(counts[rest], points, baseline, newest_lag)
    return mean, sd


def _exact_rows(counts: FloatArray, baseline: int) -> NDArray[np.bool_]:
    """Rows of whole numbers small enough that sums of squares are exact in float64."""
    with np.errstate(invalid="ignore"):
        whole = (np.trunc(counts) == counts).all(axis=1)  # NaN is not whole
        small = counts.max(axis=1, initial=0.0) ** 2 * max(counts.shape[1], baseline**2) < 2.0**53
    return np.asarray(whole & small, dtype=bool)


def _exact_moments(
    counts: FloatArray, points: IndexArray, baseline: int, newest_lag: int
) -> tuple[FloatArray, FloatArray]:
    """Window sums and sums of squares of whole numbers are exact, so any summation order
    (doubling for consecutive points, shifted copies otherwise) gives the same result."""
    if _is_contiguous(points):
        first = int(points[0]) - newest_lag - baseline + 1
        span = counts[:, first : int(points[-1]) - newest_lag + 1]
        sums = _window_sums(span, baseline, len(points))
        squares = _window_sums(span * span, baseline, len(points))
    else:
        sums = np.zeros((counts.shape[0], len(points)))
        squares = np.zeros_like(sums)
        for lag in range(newest_lag, newest_lag + baseline):
            values = _lagged(counts, points, lag)
            sums += values
            squares += values * values
    mean = sums / baseline
    # b * sum(x^2) - (sum x)^2 is an exact whole number >= 0: one rounding in the division
    variance = baseline * squares
    variance -= sums * sums
    variance /= baseline * (baseline - 1)
    return mean, np.sqrt(variance, out=variance)


def _window_sums(values: FloatArray, width: int, n_windows: int) -> FloatArray:
    """Sums of ``width`` consecutive values along each row, by doubling: sums of 1, 2, 4...
    values, added up by the binary digits of ``width`` (log2(width) + popcount additions
    instead of ``width``; cumulative sums are no faster and inexact for fractions)."""
    total: FloatArray | None = None
    runs, run_length, offset = values, 1, 0
    while width:
        if width & 1:
            part = runs[:, offset : offset + n_windows]
            total = part.copy() if total is None else np.add(total, part, out=total)
            offset += run_length
        width >>= 1
        if width:
            runs = runs[:, :-run_length] + runs[:, run_length:]
            run_length *= 2
    assert total is not None
    return total


def _two_pass_moments(
    counts: FloatArray, points: IndexArray, baseline: int, newest_lag: int
) -> tuple[FloatArray, FloatArray]:
    """Mean, then squared deviations from it, over ``baseline`` shifted copies (as R)."""
    # oldest first, the order R's mean() and sd() see the values in
    lags = range(newest_lag + baseline - 1, newest_lag - 1, -1)
    total = np.zeros((counts.shape[0], len(points)))
    for lag in lags:
        np.add(total, _lagged(counts, points, lag), out=total)
    mean = np.divide(total, baseline, out=total)
    squares = np.zeros_like(mean)
    deviation = np.empty_like(mean)
    for lag in lags:
        np.subtract(_lagged(counts, points, lag), mean, out=deviation)
        np.multiply(deviation, deviation, out=deviation)
        np.add(squares, deviation, out=squares)
    np.divide(squares, baseline - 1, out=squares)
    return mean, np.sqrt(squares, out=squares)


def _lagged(counts: FloatArray, points: IndexArray, lag: int) -> FloatArray:
    """``counts[:, points - lag]``: a view when the points are consecutive."""
    if _is_contiguous(points):
        return counts[:, int(points[0]) - lag : int(points[-1]) - lag + 1]
    return counts[:, points - lag]


def _blank(shape: tuple[int, ...], columns: slice | IndexArray) -> FloatArray:
    """NaN outside ``columns`` (filled in by the caller); only the rest is written here."""
    if not isinstance(columns, slice):
        return np.full(shape, np.nan)
    out = np.empty(shape)
    out[:, : columns.start] = np.nan
    out[:, columns.stop :] = np.nan
    return out


def _is_contiguous(points: IndexArray) -> bool:
    return len(points) > 0 and int(points[-1] - points[0]) + 1 == len(points)


def _check_params(baseline: int, alpha: float, min_sigma: float) -> None:
    if isinstance(baseline, bool) or not isinstance(baseline, int | np.integer):
        raise SeriesError(f"baseline must be a whole number of time points; got {baseline!r}")
    if baseline < 3:
        raise SeriesError(f"baseline must be at least 3 (as R's earsC); got {baseline}")
    if not 0.0 < alpha < 1.0:
        raise SeriesError(f"alpha must be between 0 and 1 (exclusive); got {alpha!r}")
    if not np.isfinite(min_sigma) or min_sigma < 0:
        raise SeriesError(f"min_sigma must be a finite number >= 0; got {min_sigma!r}")
