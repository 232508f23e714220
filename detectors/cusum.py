"""Approximate Poisson CUSUM (Rossi et al.), as R ``surveillance::cusum`` / ``algo.cusum``.

The CUSUM is sequential, so a run has a fixed first monitored index ``start``: the counts
before it estimate the expected count ``m`` (unless ``m`` is given), and the sum starts at 0
there. Values at a time point depend only on the counts from the beginning up to that point
and on ``start``; evaluating a subset ``at`` gives exactly the values of a run over every
point from ``start`` (the sum is still accumulated from ``start``, so the cost of a run is
``n_series x (max(at) - start)``, vectorised over series). A negative ``start`` counts from
the end, so it moves as the series grows; a fixed index keeps past values stable.

R parity (surveillance 1.20.3, tested on R goldens): the same transformations, sums and
upper bounds, including R's conventions:

- the alarm is ``C_t >= h`` (R's rule), i.e. ``count >= upperbound`` at the boundary, not the
  package-wide ``count > upperbound``;
- the upper bound is the count that would have made the CUSUM signal, back-transformed as R
  does (``standard`` rounds it up to a whole count; ``none`` reports ``h - C_t``;
  ``anscombe2nd``'s bound uses ``m^(1/3)/9`` where its transformation uses ``m^(-1/3)/9``);
  an undefined or negative bound is 0.

Deviations, because R's behaviour there is not usable (R gives NA from then on):

- a missing count (NaN) is not computed and the sum carries over unchanged;
- ``m`` estimated from the training counts ignores missing ones; a series whose ``m`` is not
  positive (all-zero training counts) is not computed, except with ``trans="none"`` (R
  divides by ``sqrt(0)``);
- ``m="glm"`` where the Poisson fit has no finite maximum (all-zero training counts, or a
  single positive one: R stops with "algorithm did not converge") is not computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from detectors.registry import register
from detectors.result import DetectorResult, build_result, evaluation_points
from detectors.series import CountSeries, SeriesError

Transformation = Literal["standard", "rossi", "anscombe", "anscombe2nd", "pearsonNegBin", "none"]
FloatArray = NDArray[np.float64]
# (counts, m, alpha) -> standardised counts
Standardise = Callable[[FloatArray, FloatArray, float], FloatArray]
# (m, h, k, previous sum, current sum, alpha) -> count at which the CUSUM signals
Bound = Callable[[FloatArray, float, float, FloatArray, FloatArray, float], FloatArray]
# R glm.control(): convergence tolerance and iteration limit
GLM_EPSILON = 1e-8
GLM_MAX_ITERATIONS = 25


def _anscombe_bound(base: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore"):
        return np.where(base < 0, 0.0, base**1.5)


# Expressions written in R's order of operations (algo.cusum) so values agree to rounding.
STANDARDISE: dict[Transformation, Standardise] = {
    "rossi": lambda x, m, a: (x - 3 * m + 2 * np.sqrt(x * m)) / (2 * np.sqrt(m)),
    "standard": lambda x, m, a: (x - m) / np.sqrt(m),
    "anscombe": lambda x, m, a: 3 / 2 * (x ** (2 / 3) - m ** (2 / 3)) / m ** (1 / 6),
    "anscombe2nd": lambda x, m, a: (
        (x ** (2 / 3) - (m ** (2 / 3) - m ** (-1 / 3) / 9)) / (2 / 3 * m ** (1 / 6))
    ),
    "pearsonNegBin": lambda x, m, a: (x - m) / np.sqrt(m + a * m**2),
    "none": lambda x, m, a: x + 0.0 * m,
}
UPPER_BOUND: dict[Transformation, Bound] = {
    "rossi": lambda m, h, k, c, cn, a: (
        2 * h * m**0.5
        + 2 * k * m**0.5
        - 2 * c * m**0.5
        + 5 * m
        - 2 * (4 * m**2 + 2 * m**1.5 * h + 2 * m**1.5 * k - 2 * m**1.5 * c) ** 0.5
    ),
    "standard": lambda m, h, k, c, cn, a: np.ceil(np.sqrt(m) * (h + k - c) + m),
    "anscombe": lambda m, h, k, c, cn, a: _anscombe_bound(
        2 / 3 * m ** (1 / 6) * (h + k - c) + m ** (2 / 3)
    ),
    "anscombe2nd": lambda m, h, k, c, cn, a: _anscombe_bound(
        2 / 3 * m ** (1 / 6) * (h + k - c) + (m ** (2 / 3) - m ** (1 / 3) / 9)
    ),
    "pearsonNegBin": lambda m, h, k, c, cn, a: np.sqrt(m + a * m**2) * (h + k - c) + m,
    "none": lambda m, h, k, c, cn, a: h - cn,
}


@register("cusum")
def detect_cusum(
    series: CountSeries,
    *,
    at: object | None = None,
    k: float = 1.04,
    h: float = 2.26,
    m: float | Literal["glm"] | None = None,
    trans: Transformation = "standard",
    alpha: float = 0.1,
    start: int | None = None,
) -> DetectorResult:
    """CUSUM of standardised counts from ``start`` on, with R's back-transformed bound.

    Parameters
    ----------
    series : CountSeries
        Counts, one or many series.
    at : index array, slice or None
        Time points to evaluate (None: all from ``start``); the sum always runs from
        ``start``.
    k : float
        Reference value subtracted from each standardised count.
    h : float
        Decision boundary: alarm when the sum reaches it.
    m : float, "glm" or None
        Expected count: None = mean of the counts before ``start``; a number; or "glm" = a
        Poisson GLM ``log m_t = a + b cos(2 pi t / P) + c sin(2 pi t / P)`` fitted to the
        counts before ``start`` (``P`` = 365 days or 52 weeks; ``t`` counts periods from the
        first date's day of year, or ISO week, as R's ``sts`` start).
    trans : {"standard", "rossi", "anscombe", "anscombe2nd", "pearsonNegBin", "none"}
        Standardisation of the counts (R's ``trans``).
    alpha : float
        Negative binomial dispersion for ``pearsonNegBin`` (variance ``m + alpha m^2``).
    start : int or None
        First monitored index; negative counts from the end; None = one year of history
        (365 days or 52 weeks). At least 1 when ``m`` is estimated (3 for "glm").

    Returns
    -------
    DetectorResult
        ``expected`` m, ``upperbound`` the count that would make the CUSUM signal,
        ``score`` the sum :math:`C_t`, ``alarm`` :math:`C_t \\ge h`; ``params["start"]`` is
        the resolved first monitored index.

    Notes
    -----
    With :math:`z_t` the standardised count (``standard``: :math:`(y_t - m)/\\sqrt{m}`)
    and :math:`C_{start-1} = 0`,

    .. math:: C_t = \\max(0,\\ C_{t-1} + z_t - k), \\qquad \\text{alarm} \\iff C_t \\ge h,

    and for ``standard`` :math:`U_t = \\lceil \\sqrt{m}\\,(h + k - C_{t-1}) + m \\rceil`,
    the smallest count with :math:`C_t \\ge h`.

    References
    ----------
    R ``surveillance::cusum`` / ``algo.cusum``, surveillance 1.20.3.
    Rossi, Lampugnani and Marchi (1999), An approximate CUSUM procedure for surveillance of
    health events, Statistics in Medicine 18:2111-2122.
    Pierce and Schafer (1986), Residuals in generalized linear models, JASA 81:977-986.
    """
    first = _check_params(series, k, h, m, trans, alpha, start)
    params = {"k": k, "h": h, "m": m, "trans": trans, "alpha": alpha, "start": first}
    counts = series.counts
    shape = counts.shape
    points = evaluation_points(series, at, first)
    if len(points) == 0:
        nothing = np.zeros(shape, dtype=bool)
        blank = np.full(shape, np.nan)
        return build_result(
            series, "cusum", params, expected=blank, upperbound=blank, alarm=nothing,
            computed=nothing,
        )  # fmt: skip
    stop = int(points[-1]) + 1
    observed = counts[:, first:stop]
    expected = _expected(series, m, first, stop)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        standardised = STANDARDISE[trans](observed, expected, alpha)
    # "none" never uses m; the other transformations divide by a power of m
    positive = np.logical_and(np.isfinite(expected), expected > 0)
    usable = np.asarray(positive.all(axis=1) | (trans == "none"), dtype=bool)
    missing = np.isnan(observed)
    step = standardised - k
    # A missing count adds nothing (max(0, C + 0) = C): the sum carries over.
    step[missing] = 0.0
    previous, current = _accumulate(step)
    with np.errstate(invalid="ignore", over="ignore"):
        bound = UPPER_BOUND[trans](expected, h, k, previous, current, alpha)
    bound = np.where(np.isnan(bound) | (bound < 0), 0.0, bound)
    rel = points - first
    computed = np.zeros(shape, dtype=bool)
    computed[:, points] = ~missing[:, rel] & usable[:, None]
    alarm = np.zeros(shape, dtype=bool)
    alarm[:, points] = current[:, rel] >= h
    return build_result(
        series,
        "cusum",
        params,
        expected=_scatter(shape, points, np.broadcast_to(expected, observed.shape)[:, rel]),
        upperbound=_scatter(shape, points, bound[:, rel]),
        alarm=alarm,
        computed=computed,
        score=_scatter(shape, points, current[:, rel]),
    )


def _accumulate(step: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Sums before and after each step: ``C_t = max(0, C_{t-1} + step_t)``, ``C = 0`` first.

    A loop over time (vectorised across series) rather than ``S_t - min S`` from cumulative
    sums: it repeats R's exact sequence of roundings, so alarms at ``C_t == h`` and the
    rounded-up ``standard`` bounds agree with R.
    """
    n_series, n_steps = step.shape
    # time-major so each step reads and writes contiguous memory
    steps = np.ascontiguousarray(step.T)
    sums = np.zeros((n_steps + 1, n_series))
    for t in range(n_steps):
        np.add(sums[t], steps[t], out=sums[t + 1])
        np.maximum(sums[t + 1], 0.0, out=sums[t + 1])
    return sums[:-1].T, sums[1:].T


def _expected(series: CountSeries, m: float | str | None, first: int, stop: int) -> FloatArray:
    """Expected counts, shape (n_series, 1) or (n_series, stop - first)."""
    training = series.counts[:, :first]
    if m is None:
        present = ~np.isnan(training)
        total = np.where(present, training, 0.0).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / present.sum(axis=1, keepdims=True)
    if m == "glm":
        return _fit_glm(series, first, stop)
    return np.full((series.n_series, 1), float(m))


def _fit_glm(series: CountSeries, first: int, stop: int) -> FloatArray:
    """Poisson GLM with one yearly harmonic fitted per series to the counts before ``first``.

    The iterations of R's ``glm.fit`` (IRLS from ``mu = y + 0.1``, stop when the deviance
    changes by less than ``1e-8`` relative, at most 25 iterations), vectorised over series;
    a series stops updating once it converges, so its fit never depends on the others.
    Missing training counts get weight 0 (R's ``na.omit``). Series without a converged
    finite fit (all-zero training counts; a fit that diverges or does not converge, where
    R warns "algorithm did not converge") get NaN.
    """
    period = series.periods_per_year
    first_date = series.dates[0]
    phase = first_date.isocalendar()[1] if series.freq == "week" else first_date.day_of_year
    design = _harmonic_design(phase + np.arange(first, dtype=np.float64), period)
    counts = series.counts[:, :first]
    present = ~np.isnan(counts)
    counts = np.where(present, counts, 0.0)
    coef = np.full((series.n_series, 3), np.nan)
    active = np.flatnonzero(counts.sum(axis=1) > 0)
    y, weight = counts[active], present[active]
    mu = y + 0.1  # R's poisson()$initialize
    eta = np.log(mu)
    deviance = _poisson_deviance(y, mu, weight)
    for _ in range(GLM_MAX_ITERATIONS):
        if active.size == 0:
            break
        new_coef = _irls_step(design, y, mu, eta, weight)
        eta = (new_coef[:, :, None] * design.T[None, :, :]).sum(axis=1)
        with np.errstate(over="ignore", under="ignore"):
            mu = np.exp(eta)
        new_deviance = _poisson_deviance(y, mu, weight)
        # A fit running off to infinity (no finite maximum, e.g. a single positive count)
        # drives fitted rates to 0: stop it there, as not converged.
        finite = np.isfinite(new_coef).all(axis=1) & (mu > 0).all(axis=1)
        with np.errstate(invalid="ignore"):
            change = np.abs(new_deviance - deviance) / (np.abs(new_deviance) + 0.1)
        done = finite & (change < GLM_EPSILON)
        coef[active[done]] = new_coef[done]
        going = finite & ~done
        active, y, weight, mu, eta = active[going], y[going], weight[going], mu[going], eta[going]
        deviance = new_deviance[going]
    design_new = _harmonic_design(phase + np.arange(first, stop, dtype=np.float64), period)
    with np.errstate(over="ignore", under="ignore"):
        return np.exp((coef[:, :, None] * design_new.T[None, :, :]).sum(axis=1))


def _irls_step(
    design: FloatArray, y: FloatArray, mu: FloatArray, eta: FloatArray, weight: NDArray[np.bool_]
) -> FloatArray:
    """One weighted least-squares step of the Poisson log-link IRLS, one row per series.

    Sums are taken row by row (not with matrix products, whose blocking depends on the
    number of rows) so one series gives the same fit alone or among others. Singular
    systems give NaN coefficients.
    """
    working = eta + (y - mu) / mu
    w = weight * mu
    gram = np.empty((y.shape[0], 3, 3))
    rhs = np.empty((y.shape[0], 3))
    for i in range(3):
        weighted = w * design[:, i]
        rhs[:, i] = (weighted * working).sum(axis=1)
        for j in range(i, 3):
            gram[:, i, j] = gram[:, j, i] = (weighted * design[:, j]).sum(axis=1)
    coef = np.full((y.shape[0], 3), np.nan)
    solvable = np.isfinite(gram).all(axis=(1, 2)) & (np.linalg.matrix_rank(gram) == 3)
    if solvable.any():
        coef[solvable] = np.linalg.solve(gram[solvable], rhs[solvable][:, :, None])[:, :, 0]
    return coef


def _poisson_deviance(y: FloatArray, mu: FloatArray, weight: NDArray[np.bool_]) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        unit = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
    return 2 * (weight * unit).sum(axis=1)


def _harmonic_design(t: FloatArray, period: int) -> FloatArray:
    """Columns 1, cos(2 pi t / P), sin(2 pi t / P), written as R's formula computes them."""
    angle = 2 * np.pi / period * t
    return np.column_stack([np.ones_like(t), np.cos(angle), np.sin(angle)])


def _scatter(shape: tuple[int, ...], points: NDArray[np.intp], values: FloatArray) -> FloatArray:
    """Full n_series x n_times array: ``values`` at ``points``, NaN elsewhere."""
    out = np.full(shape, np.nan)
    out[:, points] = values
    return out


def _check_params(
    series: CountSeries,
    k: float,
    h: float,
    m: float | str | None,
    trans: str,
    alpha: float,
    start: int | None,
) -> int:
    """Validate the parameters and return the first monitored index."""
    if not np.isfinite(k):
        raise SeriesError(f"k must be a finite number; got {k!r}")
    if not (np.isfinite(h) and h > 0):
        raise SeriesError(f"h must be a positive number; got {h!r}")
    if trans not in get_args(Transformation):
        raise SeriesError(
            f"trans must be one of {', '.join(get_args(Transformation))}; got {trans!r}"
        )
    if not (np.isfinite(alpha) and alpha >= 0):
        raise SeriesError(f"alpha must be a number >= 0; got {alpha!r}")
    if isinstance(m, str):
        if m != "glm":
            raise SeriesError(f"m must be a number, 'glm' or None; got {m!r}")
    elif m is not None and (isinstance(m, bool) or not (np.isfinite(m) and m > 0)):
        raise SeriesError(f"m must be a positive number, 'glm' or None; got {m!r}")
    if start is None:
        first = series.periods_per_year
    elif isinstance(start, bool) or not isinstance(start, int | np.integer):
        raise SeriesError(f"start must be a whole number (time index); got {start!r}")
    else:
        first = int(start) + series.n_times if start < 0 else int(start)
    # an estimated m needs training points before start; glm needs one per coefficient
    needed = 1 if m is None else 3 if m == "glm" else 0
    if first < needed:
        raise SeriesError(
            f"start must leave at least {needed} earlier time point(s) to estimate m; "
            f"got start={start} for {series.n_times} time points"
        )
    return first
