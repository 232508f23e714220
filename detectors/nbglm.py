"""Negative-binomial regression detector: trend, annual harmonics and weekday, fitted on past data.

For each evaluated time point a negative-binomial (NB2) log-linear model is fitted to a
training window of the past (default two years) that stops a guard period (default 7 days)
before the point, so an ongoing outbreak does not raise its own baseline. The upper bound is
the (1 - alpha) quantile of the predictive distribution at the point; an alarm is raised when
the count exceeds it. The fits of all series at one time point share one design matrix and run
together (:func:`fit_negbin`), so the nightly run over 10,000 series is one batched fit.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from detectors.negbin import ETA_RANGE, NegBinFit, fit_negbin
from detectors.registry import register
from detectors.result import DetectorResult, build_result, evaluation_points
from detectors.series import CountSeries, SeriesError

Float = NDArray[np.float64]

YEAR_DAYS = 365.25
POISSON_LIMIT = 1e-10
"""Dispersion below which the predictive distribution is taken as Poisson."""
SERIES_CHUNK = 2048
"""Series fitted together; bounds memory (each holds series × training-window arrays)."""


@register("nb_glm", sparse=False)
def detect_nb_glm(
    series: CountSeries,
    *,
    at: object | None = None,
    alpha: float = 0.01,
    train_years: float = 2.0,
    guard_days: int = 7,
    harmonics: int = 2,
    trend: bool = True,
    parameter_uncertainty: bool = True,
) -> DetectorResult:
    """Negative-binomial regression with trend, annual harmonics and weekday; NB upper bound.

    Parameters
    ----------
    series : CountSeries
        Daily or weekly counts, one or many series; with a population, log(population) is
        an offset (the model is then one of rates).
    at : index array or slice, optional
        Time points to evaluate (default: all with a full training window).
    alpha : float
        The upper bound is the (1 - alpha) quantile of the predictive distribution.
    train_years : float
        Length of the training window in years (365 days or 52 weeks a year).
    guard_days : int
        Days just before the evaluated point left out of the training window (rounded up to
        whole weeks for a weekly series).
    harmonics : int
        Pairs of annual sine/cosine terms (0 for none).
    trend : bool
        Include a linear time trend.
    parameter_uncertainty : bool
        Widen the predictive distribution by the estimation variance of the linear
        predictor (delta method); False gives the plug-in NB quantile.

    Returns
    -------
    DetectorResult
        ``expected``: fitted mean at the point; ``upperbound``: predictive quantile;
        ``p_value`` and ``score``: upper-tail probability P(Y >= y) of the count under the
        predictive distribution (small is unusual); ``alarm``: count > upperbound;
        ``extras``: ``dispersion`` (NB2 alpha, Var = mu + alpha mu^2, NaN where no fit) and
        ``converged``.

    Raises
    ------
    SeriesError
        A parameter out of range, or a training window too short for the model.

    Notes
    -----
    Model for the count :math:`y_s` on day :math:`s` of the training window,

    .. math:: y_s \\sim NB(\\mu_s, \\alpha), \\quad \\log \\mu_s = o_s + \\beta_0
              + \\beta_1 (s - t)/365.25 + \\sum_{h=1}^{H} [\\gamma_h \\sin(2\\pi h s/365.25)
              + \\delta_h \\cos(2\\pi h s/365.25)] + \\omega_{\\mathrm{dow}(s)},

    with :math:`\\mathrm{Var}\\, y = \\mu + \\alpha \\mu^2`, weekday effects (Monday the
    reference; daily series only), :math:`s` in days and :math:`o_s` the log population
    offset (0 without population). :math:`(\\beta, \\alpha)` are the maximum-likelihood
    estimates (:func:`fit_negbin`; the same model as statsmodels'
    ``NegativeBinomial(loglike_method="nb2")``). At the evaluated point :math:`t`,
    :math:`\\hat\\eta = x_t'\\hat\\beta + o_t`, :math:`\\hat\\mu = e^{\\hat\\eta}`. With
    ``parameter_uncertainty``, :math:`v = x_t' I(\\hat\\beta)^{-1} x_t` (delta method,
    :math:`I = X'WX`, :math:`W = \\mu/(1+\\alpha\\mu)`) is the variance of
    :math:`\\hat\\eta`; a log-normal error in :math:`\\hat\\mu` adds about
    :math:`\\mu^2 v` to the variance, so the predictive distribution is taken as
    :math:`NB(\\hat\\mu, \\hat\\alpha + v)` (moments matched). This matters when the
    training window is short or the trend is extrapolated; the plug-in quantile would be
    too narrow then. The upper bound is the smallest :math:`U` with
    :math:`P(Y \\le U) \\ge 1 - \\alpha`; :math:`p = P(Y \\ge y)`; alarm :math:`y > U`.

    A series whose training window has no cases is not fitted (the MLE of the intercept is
    :math:`-\\infty`): expected and upper bound are 0, so any case alarms, p = 0 for a
    positive count, 1 for zero. Sparse series are better served by sparse methods. A point
    is computed when the full training window lies in the data, at least half of it is
    observed (missing values are left out of the fit) and the fit converged (a sparse series
    whose weekday or season terms run off to minus infinity does not).

    References
    ----------
    Hilbe JM. Negative Binomial Regression, 2nd ed. Cambridge University Press, 2011.

    Noufaily A, Enki DG, Farrington P, Garthwaite P, Andrews N, Charlett A. An improved
    algorithm for outbreak detection in multiple surveillance systems. Stat Med
    2013;32:1206-22 (NB GLM with trend and seasonality for outbreak detection; R
    ``surveillance::farringtonFlexible``).

    Venables WN, Ripley BD. Modern Applied Statistics with S, 4th ed., 2002 (``MASS::glm.nb``:
    alternating IRLS and ML for the dispersion, as here).
    """
    step_days = 7 if series.freq == "week" else 1
    train = round(train_years * series.periods_per_year) if train_years > 0 else 0
    guard = math.ceil(guard_days / step_days) if guard_days >= 0 else 0
    n_params = 1 + int(trend) + 2 * harmonics + (6 if series.freq == "day" else 0)
    _check_params(alpha, train_years, train, guard_days, harmonics, n_params)
    params = {
        "alpha": float(alpha),
        "train_years": float(train_years),
        "guard_days": int(guard_days),
        "harmonics": int(harmonics),
        "trend": bool(trend),
        "parameter_uncertainty": bool(parameter_uncertainty),
    }
    shape = series.counts.shape
    expected = np.full(shape, np.nan)
    upper = np.full(shape, np.nan)
    p_value = np.full(shape, np.nan)
    dispersion = np.full(shape, np.nan)
    converged = np.zeros(shape, dtype=bool)
    computed = np.zeros(shape, dtype=bool)

    days = _day_numbers(series)
    log_pop = None if series.population is None else np.log(series.population)
    for t in evaluation_points(series, at, first=train + guard):
        rows = np.arange(t - guard - train, t - guard)
        design = design_matrix(days[rows], days[t], harmonics, trend, series.freq == "day")
        x_now = design_matrix(days[t : t + 1], days[t], harmonics, trend, series.freq == "day")[0]
        y = series.counts[:, rows]
        observed = np.isfinite(y).sum(axis=1)
        enough = observed >= max(train // 2, n_params + 1)
        empty = enough & (np.nansum(y, axis=1) == 0)
        fitted = np.flatnonzero(enough & ~empty)
        for start in range(0, len(fitted), SERIES_CHUNK):
            idx = fitted[start : start + SERIES_CHUNK]
            offset = None if log_pop is None else log_pop[np.ix_(idx, rows)]
            fit = fit_negbin(y[idx], design, offset=offset)
            now_offset = 0.0 if log_pop is None else log_pop[idx, t]
            mu, extra_var = _predict(fit, x_now, now_offset)
            disp = fit.dispersion + (extra_var if parameter_uncertainty else 0.0)
            expected[idx, t] = mu
            upper[idx, t] = nb_quantile(mu, disp, 1.0 - alpha)
            p_value[idx, t] = nb_upper_tail(series.counts[idx, t], mu, disp)
            dispersion[idx, t] = fit.dispersion
            converged[idx, t] = fit.converged
            # No estimate, no verdict: a fit that did not converge (in practice a sparse
            # series whose weekday or season terms run off to -inf) is not computed.
            enough[idx[~fit.converged]] = False
        zero = np.flatnonzero(empty)
        expected[zero, t] = 0.0
        upper[zero, t] = 0.0
        p_value[zero, t] = np.where(series.counts[zero, t] > 0, 0.0, 1.0)
        p_value[zero, t] = np.where(np.isnan(series.counts[zero, t]), np.nan, p_value[zero, t])
        computed[:, t] = enough

    alarm = computed & (series.counts > upper)
    return build_result(
        series,
        "nb_glm",
        params,
        expected=expected,
        upperbound=upper,
        alarm=alarm,
        computed=computed,
        score=p_value,
        p_value=p_value,
        extras={"dispersion": dispersion, "converged": converged & computed},
    )


def _check_params(
    alpha: float, train_years: float, train: int, guard_days: int, harmonics: int, n_params: int
) -> None:
    if not 0.0 < alpha < 1.0:
        raise SeriesError(f"alpha must be between 0 and 1 (exclusive); got {alpha}")
    if not train_years > 0:
        raise SeriesError(f"train_years must be positive; got {train_years}")
    if int(guard_days) != guard_days or guard_days < 0:
        raise SeriesError(f"guard_days must be a whole number >= 0; got {guard_days}")
    if int(harmonics) != harmonics or harmonics < 0:
        raise SeriesError(f"harmonics must be a whole number >= 0; got {harmonics}")
    if train < 2 * n_params:
        raise SeriesError(
            f"train_years={train_years} gives {train} training points, too few for "
            f"{n_params} model parameters (need at least {2 * n_params})"
        )


def _day_numbers(series: CountSeries) -> Float:
    """Days since 1970-01-01 of each time point (the time axis of trend and harmonics)."""
    return series.dates.values.astype("datetime64[D]").astype(np.int64).astype(np.float64)


def design_matrix(
    days: ArrayLike, origin: float, harmonics: int, trend: bool, weekday: bool
) -> Float:
    """Model matrix rows for the given days: intercept, trend, harmonics, weekday dummies.

    The trend is in years from ``origin`` (the evaluated day), so the intercept is the level
    there and extrapolation adds nothing to it. Harmonics use absolute days, so their phase
    is the calendar's. Weekday dummies: Tuesday..Sunday against Monday (1970-01-01 was a
    Thursday, hence the shift by 3).
    """
    day = np.asarray(days, dtype=np.float64)
    columns = [np.ones_like(day)]
    if trend:
        columns.append((day - origin) / YEAR_DAYS)
    for h in range(1, harmonics + 1):
        angle = 2.0 * np.pi * h * day / YEAR_DAYS
        columns += [np.sin(angle), np.cos(angle)]
    if weekday:
        dow = (day.astype(np.int64) + 3) % 7  # 0 = Monday
        columns += [(dow == d).astype(np.float64) for d in range(1, 7)]
    return np.column_stack(columns)


def _predict(fit: NegBinFit, x_now: Float, offset: Float | float) -> tuple[Float, Float]:
    """Mean at the evaluated point and the delta-method variance of its log.

    Stacked (per-series) products, not one matrix product, so each series' numbers do not
    depend on how many series are fitted with it.
    """
    eta = np.clip(np.matmul(fit.coef[:, None, :], x_now[:, None])[:, 0, 0] + offset, *ETA_RANGE)
    solved = np.linalg.solve(fit.information, np.broadcast_to(x_now[:, None], (*fit.coef.shape, 1)))
    variance = np.matmul(x_now[None, None, :], solved)[:, 0, 0]
    return np.exp(eta), np.maximum(variance, 0.0)


def nb_quantile(mu: ArrayLike, dispersion: ArrayLike, q: float) -> Float:
    """Smallest u with P(Y <= u) >= q for Y ~ NB(mu, dispersion) (NB2; Poisson in the limit)."""
    mu, dispersion = np.broadcast_arrays(np.asarray(mu, float), np.asarray(dispersion, float))
    poisson = dispersion * np.maximum(mu, 1.0) < POISSON_LIMIT
    size, prob = _nb_size_prob(mu, dispersion, poisson)
    out = np.where(poisson, stats.poisson.ppf(q, mu), stats.nbinom.ppf(q, size, prob))
    return np.where(mu > 0, out, 0.0)


def nb_upper_tail(y: ArrayLike, mu: ArrayLike, dispersion: ArrayLike) -> Float:
    """P(Y >= y) for Y ~ NB(mu, dispersion); NaN where y is missing."""
    y, mu, dispersion = np.broadcast_arrays(*(np.asarray(a, float) for a in (y, mu, dispersion)))
    poisson = dispersion * np.maximum(mu, 1.0) < POISSON_LIMIT
    size, prob = _nb_size_prob(mu, dispersion, poisson)
    below = np.ceil(np.nan_to_num(y, nan=0.0)) - 1.0
    out = np.where(poisson, stats.poisson.sf(below, mu), stats.nbinom.sf(below, size, prob))
    return np.where(np.isnan(y), np.nan, out)


def _nb_size_prob(mu: Float, dispersion: Float, poisson: NDArray[np.bool_]) -> tuple[Float, Float]:
    # scipy's (n, p) parameters; harmless placeholders where the Poisson branch is used.
    safe = np.where(poisson, 1.0, dispersion)
    size = 1.0 / safe
    return size, size / (size + np.where(poisson, 1.0, mu))
