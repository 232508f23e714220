"""Batched quasi-Poisson GLM fits (log link) that follow R's ``glm.fit`` step by step.

Farrington's models have one shape: intercept, optionally a linear time trend, and a
treatment-coded seasonal factor. Many (series, time point) pairs share the reference rows
of that design; only counts, prior weights and offsets differ. With the rows sorted by
factor level, ``XᵀWX`` and ``XᵀWz`` of every pair are per-level sums of ``w``, ``w t``,
``w t²`` (``np.add.reduceat``), and the small ``p × p`` systems are solved together.
Each row's sums run in the same order whatever the batch, so a series gets bit for bit
the same fit alone or among ten thousand.

The iteration reproduces ``stats::glm.fit`` (R 4.2) for ``quasipoisson(link = "log")``:
start at ``mu = y + 0.1``, working weights ``prior · mu`` and working response
``eta + (y - mu)/mu``, ``mu = max(exp(eta), 2.2e-16)``, convergence when
``|dev - dev_old| / (|dev| + 0.1) < epsilon``, step halving on a non-finite deviance, and
the fitted object's working weights, hat values and dispersion taken from the *last*
iteration's weights, as R stores them. Each series stops iterating when it converges, so
its coefficients are R's and not one step further.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DOUBLE_EPS = float(np.finfo(np.float64).eps)
"""R's ``.Machine$double.eps``: the floor of ``exp(eta)`` in the Poisson log link."""
# A column is aliased when its squared norm left after projecting out the earlier columns is
# below this share of its squared norm. R's QR (dqrdc2) uses 1e-11 on norms, i.e. 1e-22 on
# squares, which the normal equations cannot resolve; 1e-13 still only drops columns that
# are exactly dependent (in practice: a factor level whose counts are all missing).
_ALIAS_TOL = 1e-13
_LOG_EPS = float(np.log(DOUBLE_EPS))


@dataclass(frozen=True)
class FactorDesign:
    """Design ``[1, t, dummies of levels 1..L-1]`` with rows sorted by level (0 = baseline).

    Attributes
    ----------
    time : ndarray (n,) or None
        The time column, or None for a model without trend.
    level : ndarray (n,) of int
        Factor level of each row, non-decreasing, from 0 (the baseline).
    n_levels : int
        Number of levels ``L`` (all present).
    """

    time: FloatArray | None
    level: NDArray[np.intp]
    n_levels: int

    @property
    def n_columns(self) -> int:
        return 1 + (self.time is not None) + self.n_levels - 1

    @property
    def _starts(self) -> NDArray[np.intp]:
        return np.searchsorted(self.level, np.arange(self.n_levels)).astype(np.intp)

    @property
    def _sizes(self) -> NDArray[np.intp]:
        return np.bincount(self.level, minlength=self.n_levels).astype(np.intp)

    def _dummy(self, level: int) -> int:
        return (self.time is not None) + level  # column of level ``level`` ≥ 1

    def matrix(self) -> FloatArray:
        """The dense ``n × p`` design matrix."""
        cols = [np.ones(self.level.size)]
        if self.time is not None:
            cols.append(self.time)
        cols += [(self.level == j).astype(np.float64) for j in range(1, self.n_levels)]
        return np.column_stack(cols)

    def row(self, time: float, level: int) -> FloatArray:
        """The design row of a new point."""
        out = np.zeros(self.n_columns)
        out[0] = 1.0
        if self.time is not None:
            out[1] = time
        if level > 0:
            out[self._dummy(level)] = 1.0
        return out

    def gram(self, w: FloatArray) -> FloatArray:
        """``XᵀWX`` for each row of weights ``w`` (S, n): shape (S, p, p)."""
        starts, t = self._starts, self.time
        lev = np.add.reduceat(w, starts, axis=1)
        p, first = self.n_columns, 1 + (t is not None)
        cols = first + np.arange(self.n_levels - 1)
        a = np.zeros((w.shape[0], p, p))
        a[:, 0, 0] = lev.sum(axis=1)
        a[:, 0, cols] = a[:, cols, 0] = a[:, cols, cols] = lev[:, 1:]
        if t is not None:
            wt = np.add.reduceat(w * t, starts, axis=1)
            a[:, 0, 1] = a[:, 1, 0] = wt.sum(axis=1)
            a[:, 1, 1] = np.add.reduceat(w * (t * t), starts, axis=1).sum(axis=1)
            a[:, 1, cols] = a[:, cols, 1] = wt[:, 1:]
        return a

    def empty_level(self, w: FloatArray) -> BoolArray:
        """Rows of weights ``w`` (S, n) for which some level has no weight (a singular fit)."""
        return np.asarray((np.add.reduceat(w, self._starts, axis=1) <= 0).any(axis=1))

    def xt(self, v: FloatArray) -> FloatArray:
        """``Xᵀv`` for each row of ``v`` (S, n): shape (S, p)."""
        lev = np.add.reduceat(v, self._starts, axis=1)
        head = [lev.sum(axis=1)]
        if self.time is not None:
            head.append(np.add.reduceat(v * self.time, self._starts, axis=1).sum(axis=1))
        return np.column_stack([*head, lev[:, 1:]])

    def predict(self, coef: FloatArray) -> FloatArray:
        """``X β`` for each row of ``coef`` (S, p): shape (S, n)."""
        first = 2 if self.time is not None else 1
        by_level = np.empty((coef.shape[0], self.n_levels))
        by_level[:, 0] = 0.0
        by_level[:, 1:] = coef[:, first:]
        by_level += coef[:, :1]
        # rows are sorted by level: a repeat of each level's value, no gather
        eta = np.repeat(by_level, self._sizes, axis=1)
        if self.time is not None:
            eta += coef[:, 1:2] * self.time
        return np.asarray(eta, dtype=np.float64)

    def quadratic(self, c: FloatArray) -> FloatArray:
        """``x_iᵀ C x_i`` for every design row and each ``C`` in ``c`` (S, p, p): (S, n)."""
        first = 2 if self.time is not None else 1
        cols = first + np.arange(self.n_levels - 1)
        # per level: the intercept/dummy part, and (with time) the linear and square terms
        d0 = np.zeros((c.shape[0], self.n_levels))
        d0[:, 1:] = 2 * c[:, 0, cols] + c[:, cols, cols]
        out = c[:, :1, 0] + d0[:, self.level]
        if self.time is not None:
            d1 = np.zeros((c.shape[0], self.n_levels))
            d1[:, 1:] = 2 * c[:, 1, cols]
            out = out + (2 * c[:, :1, 1] + d1[:, self.level]) * self.time
            out = out + c[:, 1:2, 1] * (self.time * self.time)
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class QuasiPoissonFit:
    """Fits of ``S`` series on one design matrix ``X`` (``n`` rows, ``p`` columns).

    Attributes
    ----------
    coef : ndarray (S, p)
        Coefficients; 0 for aliased columns (R reports NA and predicts as if 0).
    mu : ndarray (S, n)
        Fitted means.
    working_weights : ndarray (S, n)
        R's ``fit$weights``: prior weight × mu of the last iteration's start; 0 where the
        prior weight is 0 (missing counts).
    cov_unscaled : ndarray (S, p, p)
        ``(XᵀWX)⁻¹`` for those weights (zero rows/columns for aliased columns).
    dispersion : ndarray (S,)
        ``summary.glm``'s estimate ``Σ w (y - mu)²/mu² / (n_ok - rank)`` (NaN if no df).
    df_residual : ndarray (S,)
        Observations with positive prior weight minus the rank.
    converged : ndarray (S,) of bool
        R's ``converged``.
    failed : ndarray (S,) of bool
        Cases where R's ``glm`` stops with an error (no valid coefficients, more columns
        than observations); nothing else of such a series is meaningful.
    """

    coef: FloatArray
    mu: FloatArray
    working_weights: FloatArray
    cov_unscaled: FloatArray
    dispersion: FloatArray
    df_residual: FloatArray
    converged: BoolArray
    failed: BoolArray


def fit_quasipoisson(
    design: FactorDesign,
    y: FloatArray,
    prior: FloatArray,
    offset: FloatArray | None = None,
    *,
    epsilon: float = 1e-8,
    maxit: int = 25,
) -> QuasiPoissonFit:
    """Fit ``log E[y] = offset + X β`` by IRLS for every row of ``y`` at once.

    Parameters
    ----------
    design : FactorDesign
        Design shared by all rows (``n`` observations, ``p`` columns).
    y : ndarray (S, n)
        Counts; entries with prior weight 0 are ignored (pass 0 there, not NaN).
    prior : ndarray (S, n)
        Prior weights; 0 drops an observation (a missing count, R removes the row).
    offset : ndarray (S, n), optional
        Offset on the log scale (``log(population)``).
    epsilon, maxit : float, int
        ``glm.control`` settings (R's defaults).

    Returns
    -------
    QuasiPoissonFit

    Notes
    -----
    Iteration ``t``: ``w = prior · mu``, ``z = eta - offset + (y - mu)/mu``,
    ``β = (XᵀWX)⁻¹ XᵀWz``, ``eta = Xβ + offset``, ``mu = max(exp(eta), ε)``; stop when
    ``|D_t - D_{t-1}| / (|D_t| + 0.1) < epsilon`` with ``D`` the Poisson deviance.

    References
    ----------
    R Core Team, ``stats::glm.fit`` (R 4.2.2); McCullagh & Nelder (1989), *Generalized
    Linear Models*, 2nd ed., section 2.5.
    """
    n_series, n = y.shape
    p = design.n_columns
    coef = np.zeros((n_series, p))
    mu_out = y + 0.1
    w_last = np.zeros((n_series, n))
    converged = np.zeros(n_series, dtype=bool)
    failed = np.zeros(n_series, dtype=bool)
    n_ok = (prior > 0).sum(axis=1)
    failed |= n_ok < 1
    # Working state of the series still iterating (compacted when some finish).
    active = np.flatnonzero(~failed)
    ya, pa = y[active], prior[active]
    oa = None if offset is None else offset[active]
    py = pa * ya
    with np.errstate(divide="ignore", invalid="ignore"):
        # Σ prior (y log y - y): the part of the deviance that does not depend on mu.
        base = np.sum(np.where(ya > 0, py * np.log(ya), 0.0) - py, axis=1)
    mu = ya + 0.1
    eta = np.log(mu)
    w = pa * mu  # log link: d mu/d eta = mu = variance, so the working weight is prior · mu
    dev_old = _deviance(base, w, py, eta)
    coef_old = np.zeros((active.size, p))
    for iteration in range(1, maxit + 1):
        if active.size == 0:
            break
        # working response times weight: w z = w (eta - offset) + prior (y - mu)
        wz = w * (eta if oa is None else eta - oa)
        wz += py
        wz -= w
        start, kept = solve_normal_equations(design.gram(w), design.xt(wz), design.empty_level(w))
        # R stops the iteration (not converged) on non-finite coefficients, and with an
        # error when there are fewer observations than estimable coefficients.
        too_few = n_ok[active] < kept.sum(axis=1)
        failed[active[too_few]] = True
        bad = ~np.isfinite(start).all(axis=1) | too_few
        start[bad] = 0.0
        eta = design.predict(start)
        if oa is not None:
            eta += oa
        with np.errstate(over="ignore"):
            mu = np.exp(eta)
        np.maximum(mu, DOUBLE_EPS, out=mu)
        w_next = pa * mu
        dev = _deviance(base, w_next, py, eta)
        bad_dev = ~np.isfinite(dev) & ~bad
        if bad_dev.any():
            if iteration == 1:
                # R: "no valid set of coefficients has been found" (an error).
                failed[active[bad_dev]] = True
                bad |= bad_dev
            else:
                rows = np.flatnonzero(bad_dev)
                _halve_steps(design, base, pa, py, oa, start, coef_old, eta, mu, dev, rows, maxit)
                w_next[rows] = pa[rows] * mu[rows]
                still = ~np.isfinite(dev) & bad_dev
                failed[active[still]] = True
                bad |= still
        done = ~bad & (np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < epsilon)
        converged[active[done]] = True
        finished = done | bad | (iteration == maxit)
        if finished.any():
            # R keeps the weights this iteration started from (its QR and fit$weights).
            leaving = active[finished]
            coef[leaving], mu_out[leaving], w_last[leaving] = (
                start[finished],
                mu[finished],
                w[finished],
            )
            keep = ~finished
            active, pa, py, base = active[keep], pa[keep], py[keep], base[keep]
            oa = None if oa is None else oa[keep]
            mu, eta, dev, start, w_next = mu[keep], eta[keep], dev[keep], start[keep], w_next[keep]
        dev_old, coef_old, w = dev, start, w_next
    cov, kept = invert_normal_equations(design.gram(w_last), design.empty_level(w_last))
    df_residual = (n_ok - kept.sum(axis=1)).astype(np.float64)
    resid2 = np.where(prior > 0, (y - mu_out) ** 2 / mu_out**2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dispersion = np.where(df_residual > 0, (w_last * resid2).sum(axis=1) / df_residual, np.nan)
    return QuasiPoissonFit(
        coef=coef,
        mu=mu_out,
        working_weights=w_last,
        cov_unscaled=cov,
        dispersion=dispersion,
        df_residual=df_residual,
        converged=converged & ~failed,
        failed=failed,
    )


def _deviance(base: FloatArray, w: FloatArray, py: FloatArray, eta: FloatArray) -> FloatArray:
    """Poisson deviance ``2 Σ prior (y log(y/mu) - (y - mu))`` from its mu-free part ``base``.

    ``w = prior · mu``; ``log(mu) = eta`` unless ``exp(eta)`` was floored at ``ε``.
    """
    log_mu = eta if eta.size == 0 or eta.min() >= _LOG_EPS else np.maximum(eta, _LOG_EPS)
    dot = np.einsum("ij,ij->i", py, log_mu)
    return np.asarray(2.0 * (base + w.sum(axis=1) - dot), dtype=np.float64)


def hat_values(fit: QuasiPoissonFit, design: FactorDesign) -> FloatArray:
    """Diagonal of the weighted hat matrix, R's ``hatvalues(model)``: ``w_i x_iᵀ (XᵀWX)⁻¹ x_i``."""
    return np.asarray(fit.working_weights * design.quadratic(fit.cov_unscaled), dtype=np.float64)


def solve_normal_equations(
    a: FloatArray, b: FloatArray, singular: BoolArray
) -> tuple[FloatArray, BoolArray]:
    """Solve the stacked systems ``a β = b``; aliased columns get β = 0.

    Returns the solutions and which columns each series kept. Systems known to be
    ``singular`` (a season level without data: its column is zero, or, for the baseline,
    the intercept is the sum of the other levels), and any the batched LAPACK call cannot
    solve, are solved one by one with aliased columns dropped, as R's pivoting QR drops
    them; the prediction does not depend on which of the dependent columns goes.
    """
    return _batched(a, b, singular)


def invert_normal_equations(a: FloatArray, singular: BoolArray) -> tuple[FloatArray, BoolArray]:
    """Inverse of each ``XᵀWX``, zero-padded for aliased columns (see :func:`solve_normal_equations`)."""
    return _batched(a, None, singular)


def _batched(
    a: FloatArray, b: FloatArray | None, singular: BoolArray
) -> tuple[FloatArray, BoolArray]:
    n_series, p, _ = a.shape
    kept = np.ones((n_series, p), dtype=bool)
    out = np.full((n_series, p) if b is not None else a.shape, np.nan)
    suspect = np.asarray(singular | ~np.isfinite(a).all(axis=(1, 2)), dtype=bool)
    fine = np.flatnonzero(~suspect)
    try:
        if b is not None:
            out[fine] = np.linalg.solve(a[fine], b[fine][..., None])[..., 0]
        else:
            out[fine] = np.linalg.inv(a[fine])
    except np.linalg.LinAlgError:
        suspect[:] = True
    suspect |= ~np.isfinite(out.reshape(n_series, -1)).all(axis=1)
    for i in np.flatnonzero(suspect):
        keep = _independent_columns(a[i])
        kept[i] = keep
        sub = a[i][np.ix_(keep, keep)]
        out[i] = 0.0
        try:
            if b is not None:
                out[i, keep] = np.linalg.solve(sub, b[i, keep])
            else:
                out[i][np.ix_(keep, keep)] = np.linalg.inv(sub)
        except np.linalg.LinAlgError:
            out[i] = np.nan
    return out, kept


def _independent_columns(a: FloatArray) -> BoolArray:
    """Columns kept by a left-to-right pivoted Cholesky of ``a`` (R's QR keeps column order)."""
    p = a.shape[0]
    keep = np.zeros(p, dtype=bool)
    for j in range(p):
        if not np.isfinite(a[j, j]) or a[j, j] <= 0:
            continue
        trial = keep.copy()
        trial[j] = True
        sub = a[np.ix_(trial, trial)]
        try:
            chol = np.linalg.cholesky(sub)
        except np.linalg.LinAlgError:
            continue
        if chol[-1, -1] ** 2 > _ALIAS_TOL * a[j, j]:
            keep = trial
    return keep


def _halve_steps(
    design: FactorDesign,
    base: FloatArray,
    prior: FloatArray,
    py: FloatArray,
    offset: FloatArray | None,
    start: FloatArray,
    coef_old: FloatArray,
    eta: FloatArray,
    mu: FloatArray,
    dev: FloatArray,
    rows: NDArray[np.intp],
    maxit: int,
) -> None:
    """R's step halving towards the previous coefficients while the deviance is not finite.

    Updates ``start``, ``eta``, ``mu`` and ``dev`` in place at ``rows``.
    """
    for _ in range(maxit):
        rows = rows[~np.isfinite(dev[rows])]
        if rows.size == 0:
            break
        start[rows] = (start[rows] + coef_old[rows]) / 2
        eta[rows] = design.predict(start[rows]) + (0.0 if offset is None else offset[rows])
        with np.errstate(over="ignore"):
            mu[rows] = np.maximum(np.exp(eta[rows]), DOUBLE_EPS)
        dev[rows] = _deviance(base[rows], prior[rows] * mu[rows], py[rows], eta[rows])
