"""Shared pieces of the ESSENCE detectors: parameter checks, levels, thresholds, results.

See :mod:`detectors.essence`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detectors.result import DetectorResult, build_result
from detectors.series import CountSeries, SeriesError

Array = NDArray[np.float64]
Codes = NDArray[np.int8]

LEVELS = ("none", "yellow", "red")
"""Names of ``extras["level"]`` codes 0, 1, 2 (Rnssp: blue, yellow, red); -1: not computed."""
NONE, YELLOW, RED = 0, 1, 2
SUB_METHODS = ("ewma", "regression")
"""Names of the switch's ``extras["method"]`` codes 0, 1; -1: not computed."""
EWMA, REGRESSION = 0, 1


def check_common(b: int, g: int, red: float, yellow: float) -> None:
    """Reject parameters Rnssp rejects (B < 7, g < 0) and levels outside (0, 1)."""
    if isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 7:
        raise SeriesError(f"b (Rnssp's baseline length B) must be a whole number ≥ 7; got {b!r}")
    if isinstance(g, bool) or not isinstance(g, int | np.integer) or g < 0:
        raise SeriesError(f"g (Rnssp's guard band) must be a whole number ≥ 0; got {g!r}")
    if not 0 < red < 1:
        raise SeriesError(f"red must be a p-value level between 0 and 1; got {red!r}")
    if not red <= yellow < 1:
        raise SeriesError(f"yellow must be between red ({red}) and 1; got {yellow!r}")


def check_weights(w1: float, w2: float) -> None:
    """Smoothing weights must lie in (0, 1]."""
    for name, w in (("w1", w1), ("w2", w2)):
        if not 0 < w <= 1:
            raise SeriesError(f"{name} (smoothing weight) must be in (0, 1]; got {w!r}")


def check_regression(series: CountSeries, b: int) -> None:
    """The regression needs daily data and B a multiple of 7, ≥ 14 (Rnssp fails otherwise)."""
    if series.freq != "day":
        raise SeriesError("regression and switch need daily counts (day-of-week terms)")
    if b % 7 != 0 or b < 14:
        raise SeriesError(f"b must be a multiple of 7 and ≥ 14 for the regression; got {b}")


def levels_of(p_value: Array, red: float, yellow: float) -> Codes:
    """Rnssp's levels: red if p < red, yellow if red ≤ p < yellow, else none."""
    return np.where(p_value < red, RED, np.where(p_value < yellow, YELLOW, NONE)).astype(np.int8)


def just_below(limit: Array) -> Array:
    """Largest float below ``limit``: ``count > result`` ⇔ ``count ≥ limit``."""
    return np.nextafter(limit, -np.inf)


def reconcile(threshold: Array, count: Array, alarm: NDArray[np.bool_]) -> Array:
    """Nudge the analytic threshold by its rounding error so ``alarm ⇔ count > threshold``.

    The alarm follows Rnssp's comparison of the p-value; the threshold is its closed-form
    inverse, which can sit an ulp or so on the wrong side of a count right at the limit.
    """
    bound = threshold.copy()
    low = alarm & ~(count > bound)
    bound[low] = np.nextafter(count[low], -np.inf)
    high = ~alarm & (count > bound)
    bound[high] = count[high]
    return bound


def spread(series: CountSeries, points: NDArray[np.intp], values: NDArray[np.generic]) -> NDArray:
    """Spread values at ``points`` over the whole time axis (-1, False or NaN elsewhere)."""
    shape = series.counts.shape
    out: NDArray
    if values.dtype == np.int8:
        out = np.full(shape, -1, dtype=np.int8)
    elif values.dtype == bool:
        out = np.zeros(shape, dtype=bool)
    else:
        out = np.full(shape, np.nan)
    out[:, points] = values
    return out


def finish(
    series: CountSeries,
    method: str,
    params: dict[str, object],
    points: NDArray[np.intp],
    *,
    expected: Array,
    threshold: Array,
    score: Array,
    p_value: Array,
    level: Codes,
    valid: NDArray[np.bool_],
    extras: dict[str, NDArray[np.generic]],
) -> DetectorResult:
    """Build the result: alarm = red at valid points, threshold reconciled, codes spread."""
    count = series.counts[:, points]
    alarm = (level == RED) & valid
    bound = reconcile(threshold, count, alarm)
    level = np.where(valid, level, -1).astype(np.int8)
    extras = {"level": level, **extras}
    return build_result(
        series,
        method,
        params,
        expected=spread(series, points, expected),
        upperbound=spread(series, points, bound),
        alarm=spread(series, points, alarm),
        computed=spread(series, points, valid),
        score=spread(series, points, score),
        p_value=spread(series, points, p_value),
        extras={name: spread(series, points, values) for name, values in extras.items()},
    )
