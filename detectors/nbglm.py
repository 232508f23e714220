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
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from detectors.registry import register
from detectors.result import DetectorResult, build_result, evaluation_points
from detectors.series import CountSeries, SeriesError

Float = NDArray[np.float64]

YEAR_DAYS = 365.25
POISSON_LIMIT = 1e-10
"""Dispersion below which the predictive distribution is taken as Poisson."""
SERIES_CHUNK = 2048
"""Series fitted together; bounds memory (each holds series × training-window arrays)."""

LOG_THETA_RANGE = (math.log(1e-4), math.log(1e6))
"""Bounds on log(1/dispersion); the upper one is the Poisson limit (underdispersed data)."""
TAIL_LIMIT = 2000
"""Largest count for which the Newton steps use count tables instead of special functions."""
ETA_RANGE = (-30.0, 30.0)
"""Bounds on the linear predictor, against overflow."""
SEPARATED = math.log(1e-8)
"""A fitted mean below this (log scale) at an observed point means the fit is running off to
minus infinity (a weekday or season with no cases in a sparse series): stop, not converged."""


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


@dataclass(frozen=True)
class NegBinFit:
    """Maximum-likelihood NB2 fits of many series on one design matrix.

    Attributes
    ----------
    coef : ndarray (n_series, n_params)
        Regression coefficients (log link).
    dispersion : ndarray (n_series,)
        NB2 dispersion alpha (Var = mu + alpha mu^2; statsmodels' ``alpha``, 1/theta of
        ``MASS::glm.nb``).
    information : ndarray (n_series, n_params, n_params)
        Fisher information X'WX of the coefficients at the estimate, W = mu/(1 + alpha mu).
    converged : ndarray of bool (n_series,)
    iterations : ndarray of int (n_series,)
    """

    coef: Float
    dispersion: Float
    information: Float
    converged: NDArray[np.bool_]
    iterations: NDArray[np.int64]


def fit_negbin(
    counts: Float,
    design: Float,
    *,
    offset: Float | None = None,
    tol: float = 1e-8,
    max_iter: int = 50,
) -> NegBinFit:
    """Fit NB2 log-linear models to many series sharing one design matrix, all at once.

    Parameters
    ----------
    counts : ndarray (n_series, n_obs)
        Counts; NaN values are left out of the fit. Each series needs a positive count.
    design : ndarray (n_obs, n_params)
        Model matrix shared by all series.
    offset : ndarray (n_series, n_obs), optional
        Known part of the linear predictor (e.g. log population).
    tol : float
        Convergence: coefficient change <= tol (1 + |coef|) and a dispersion change that
        moves the largest variance by a relative <= tol.
    max_iter : int
        Iterations before giving up (the series is then flagged not converged; well-posed
        fits take 6-25). A series whose fitted mean at an observed point falls below 1e-8
        (separation: a weekday or season without cases) stops early, not converged.

    Returns
    -------
    NegBinFit

    Notes
    -----
    Each iteration takes, for every unconverged series, one IRLS (Fisher scoring) step for
    :math:`\\beta` at the current :math:`\\alpha` -- working weights
    :math:`w = \\mu/(1+\\alpha\\mu)`, working response :math:`z = \\eta - o + (y-\\mu)/\\mu`,
    :math:`\\beta \\leftarrow (X'WX)^{-1} X'Wz` -- then one Newton step for
    :math:`\\log\\theta = -\\log\\alpha` on the profile log-likelihood at the new
    :math:`\\mu`, with score
    :math:`\\sum [\\psi(y+\\theta) - \\psi(\\theta) - \\log(1+\\mu/\\theta)
    + (\\mu-y)/(\\theta+\\mu)]`. This is the block-coordinate ascent of ``MASS::glm.nb``
    with one step per block; its fixed point is the joint MLE, the estimate of statsmodels'
    ``NegativeBinomial(loglike_method="nb2")``. Underdispersed series reach the upper bound
    of :math:`\\theta` (:math:`\\alpha = 10^{-6}`, in effect the Poisson limit).

    The weighted cross-products are one stacked matrix product per series (not one product
    over all series), so a series' estimate does not depend on the others in the batch;
    converged series stop iterating.
    """
    n_series, n_obs = counts.shape
    n_params = design.shape[1]
    observed = np.isfinite(counts)
    y = np.where(observed, counts, 0.0)
    mask = observed.astype(np.float64)
    off = np.zeros_like(y) if offset is None else np.asarray(offset, dtype=np.float64)
    cross = (design[:, :, None] * design[:, None, :]).reshape(n_obs, n_params * n_params)
    design_t = np.ascontiguousarray(design.T)  # BLAS needs it contiguous
    tails, eligible = _count_tails(y, mask)

    # Starting values as glm.nb: mu = y (1/6 for zeros); theta from the marginal moments.
    eta = np.log(np.where(y > 0, y, 1.0 / 6.0))
    n_obs_i = mask.sum(axis=1)
    mean = y.sum(axis=1) / n_obs_i
    var = (mask * (y - mean[:, None]) ** 2).sum(axis=1) / n_obs_i
    excess = np.clip((var - mean) / np.maximum(mean, 1e-12) ** 2, 1e-2, 1e2)
    log_theta = -np.log(excess)
    coef = np.zeros((n_series, n_params))
    converged = np.zeros(n_series, dtype=bool)
    iterations = np.zeros(n_series, dtype=np.int64)

    active = np.arange(n_series)
    for _ in range(max_iter):
        if active.size == 0:
            break
        a = active
        mu = np.exp(eta[a])
        weights = mask[a] * mu / (1.0 + np.exp(-log_theta[a])[:, None] * mu)
        working = eta[a] - off[a] + (y[a] - mu) / mu
        info = _cross_products(weights, cross, n_params)
        rhs = np.matmul((weights * working)[:, None, :], design)[:, 0, :]
        new_coef = _solve(info, rhs)
        new_eta = np.clip(np.matmul(new_coef[:, None, :], design_t)[:, 0, :] + off[a], *ETA_RANGE)
        step = _theta_newton_step(
            y[a], mask[a], np.exp(new_eta), log_theta[a], tails[a], eligible[a]
        )
        new_log_theta = np.clip(log_theta[a] + step, *LOG_THETA_RANGE)
        change = np.abs(new_coef - coef[a]).max(axis=1)
        size = 1.0 + np.abs(new_coef).max(axis=1)
        # Dispersion settled when it moves the variance mu + alpha mu^2 by a relative <= tol:
        # near the Poisson limit log(theta) creeps on while nothing changes.
        mu_max = np.exp(new_eta.max(axis=1))
        old_disp, new_disp = np.exp(-log_theta[a]), np.exp(-new_log_theta)
        var_change = np.abs(new_disp - old_disp) * mu_max / (1.0 + new_disp * mu_max)
        done = (change <= tol * size) & (var_change <= tol)
        separated = ((new_eta < SEPARATED) & (mask[a] > 0)).any(axis=1)
        coef[a], eta[a], log_theta[a] = new_coef, new_eta, new_log_theta
        iterations[a] += 1
        converged[a] = done & ~separated
        active = a[~(done | separated)]

    mu = np.exp(eta)
    dispersion = np.exp(-log_theta)
    weights = mask * mu / (1.0 + dispersion[:, None] * mu)
    information = _cross_products(weights, cross, n_params)
    return NegBinFit(coef, dispersion, information, converged, iterations)


def _cross_products(weights: Float, cross: Float, n_params: int) -> Float:
    """X'WX for each series: (n_series, p, p), one stacked product per series."""
    flat = np.matmul(weights[:, None, :], cross)[:, 0, :]
    return flat.reshape(-1, n_params, n_params)


def _solve(info: Float, rhs: Float) -> Float:
    """Solve info @ x = rhs per series; a (near-)singular system falls back to least squares."""
    try:
        return np.asarray(np.linalg.solve(info, rhs[..., None])[..., 0], dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.stack(
            [np.linalg.lstsq(m, r, rcond=None)[0] for m, r in zip(info, rhs, strict=True)]
        )


def _count_tails(y: Float, mask: Float) -> tuple[Float, NDArray[np.bool_]]:
    """For whole-number series: N[i, j] = number of observed counts of series i above j.

    With these, sum_s [psi(y_s + theta) - psi(theta)] = sum_j N_j / (theta + j) exactly
    (psi(x + 1) = psi(x) + 1/x), and likewise for trigamma: no special functions in the
    Newton steps and no cancellation at large theta. Series with fractional counts or counts
    above ``TAIL_LIMIT`` (where the table would outgrow the data) use the special functions.
    """
    top = np.where(mask > 0, y, 0.0).max(axis=1)
    eligible = (np.where(mask > 0, y % 1.0, 0.0) == 0.0).all(axis=1) & (top <= TAIL_LIMIT)
    width = int(top[eligible].max()) if eligible.any() else 0
    tails = np.zeros((y.shape[0], width))
    if width:
        values = np.where((mask > 0) & eligible[:, None], y, 0.0).astype(np.intp)
        rows = np.broadcast_to(np.arange(y.shape[0])[:, None], y.shape)
        table = np.zeros((y.shape[0], width + 1))
        np.add.at(table, (rows, values), 1.0)
        table[:, 0] = 0.0  # zeros and unobserved points contribute nothing
        # N_j = number of counts > j = sum of the table above j
        tails = table[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
    return tails, eligible


def _theta_newton_step(
    y: Float,
    mask: Float,
    mu: Float,
    log_theta: Float,
    tails: Float,
    eligible: NDArray[np.bool_],
) -> Float:
    """Newton step for log(theta) on the NB2 log-likelihood at fixed mu (one per series).

    Bounded to +-2 (a factor e^2) and, where the likelihood is not concave there, a plain
    move of 1 in the direction of the score, so the iteration cannot run away.
    """
    th = np.exp(log_theta)
    theta = th[:, None]
    digamma_diff, trigamma_diff = np.empty_like(th), np.empty_like(th)
    if eligible.any():
        # Sequential sums (cumsum), so the table's width (the batch's largest count) does not
        # change a series' result: trailing zeros add nothing.
        inv = 1.0 / (theta[eligible] + np.arange(tails.shape[1]))
        terms = tails[eligible] * inv
        digamma_diff[eligible] = terms.cumsum(axis=1)[:, -1] if terms.shape[1] else 0.0
        trigamma_diff[eligible] = -(terms * inv).cumsum(axis=1)[:, -1] if terms.shape[1] else 0.0
    other = ~eligible
    if other.any():
        yo, mo, to = y[other], mask[other], theta[other]
        digamma_diff[other] = (mo * (special.digamma(yo + to) - special.digamma(to))).sum(axis=1)
        trigamma_diff[other] = (mo * (_trigamma(yo + to) - _trigamma(to))).sum(axis=1)
    theta_mu = theta + mu
    score = digamma_diff + (mask * ((mu - y) / theta_mu - np.log1p(mu / theta))).sum(axis=1)
    curvature = trigamma_diff + (
        mask * (1.0 / theta - 2.0 / theta_mu + (y + theta) / theta_mu**2)
    ).sum(axis=1)
    gradient = th * score  # d loglik / d log(theta)
    hessian = th * th * curvature + gradient
    newton = -gradient / np.where(hessian < 0, hessian, -1.0)
    step = np.where(hessian < 0, newton, np.sign(gradient))
    return np.clip(step, -2.0, 2.0)


def _trigamma(x: Float) -> Float:
    """Trigamma for x > 0: recurrence up to x >= 6, then the asymptotic series (relative error < 1e-8).

    scipy's ``polygamma(1, x)`` is several times slower on the (series × days) arrays of the
    nightly fit; this only steers Newton steps, the fixed point does not depend on it.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    total = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        if not small.any():
            break
        total += np.where(small, 1.0 / (x * x), 0.0)
        x = np.where(small, x + 1.0, x)
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv + inv2 * (0.5 + inv * (1 / 6 - inv2 * (1 / 30 - inv2 * (1 / 42 - inv2 / 30))))
    return total + series
