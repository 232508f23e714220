"""Negative-binomial GLM detector: parity with statsmodels, behaviour, invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from detectors import SeriesError, get_method, make_series, negbin
from detectors.nbglm import (
    design_matrix,
    detect_nb_glm,
    fit_negbin,
    nb_quantile,
    nb_upper_tail,
)

START_DAY = 18_262.0  # 2020-01-01 in days since 1970-01-01 (a Wednesday)
TRAIN = 730
COEF = np.array([np.log(8.0), 0.15, 0.5, -0.3, 0.2, 0.1, 0.1, 0.05, 0.0, -0.1, -0.5, -0.7])


def _design(n: int = TRAIN) -> np.ndarray:
    days = START_DAY + np.arange(n)
    return design_matrix(days, days[-1] + 8.0, 2, True, True)


def _nb_draw(rng: np.random.Generator, mu: np.ndarray, dispersion: float) -> np.ndarray:
    size = 1.0 / dispersion
    return rng.negative_binomial(size, size / (size + mu)).astype(float)


def _statsmodels_nb(y: np.ndarray, x: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """statsmodels' NB2 MLE (params, then alpha), started from the Poisson fit and polished
    by Newton; its default start fails on some of these series."""
    model = sm.NegativeBinomial(y, x, loglike_method="nb2", offset=offset)
    poisson = sm.GLM(y, x, family=sm.families.Poisson(), offset=offset).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rough = model.fit(
            start_params=np.r_[poisson.params, 0.5], disp=0, maxiter=5000, method="bfgs"
        )
        fine = model.fit(start_params=rough.params, disp=0, maxiter=200, method="newton")
    assert fine.mle_retvals["converged"] and np.all(np.isfinite(fine.params))
    return np.asarray(fine.params)


# --- parity with statsmodels -----------------------------------------------------------------


@pytest.mark.parametrize("dispersion", [0.01, 0.05, 0.3, 1.0, 2.5])
def test_fit_matches_statsmodels_negative_binomial(dispersion: float) -> None:
    rng = np.random.default_rng(int(dispersion * 1000))
    x = _design()
    y = _nb_draw(rng, np.exp(x @ COEF), dispersion)
    fit = fit_negbin(y[None], x)
    want = _statsmodels_nb(y, x)
    assert fit.converged[0]
    np.testing.assert_allclose(fit.coef[0], want[:-1], rtol=1e-6, atol=1e-7)
    assert fit.dispersion[0] == pytest.approx(want[-1], rel=1e-6)
    # at the same alpha the GLM gives the same coefficients and covariance (X'WX)^-1
    glm = sm.GLM(y, x, family=sm.families.NegativeBinomial(alpha=fit.dispersion[0]))
    res = glm.fit(tol=1e-13)
    np.testing.assert_allclose(fit.coef[0], res.params, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(
        np.linalg.inv(fit.information[0]), res.cov_params(), rtol=1e-6, atol=1e-11
    )


def test_batch_of_series_matches_statsmodels_one_by_one() -> None:
    rng = np.random.default_rng(11)
    x = _design()
    levels = [1.0, 2.0, 8.0, 40.0, 150.0]  # (an MLE on the alpha = 0 boundary: see below)
    counts = np.array([_nb_draw(rng, lv / 8.0 * np.exp(x @ COEF), 0.2) for lv in levels])
    counts[1, ::13] = np.nan  # missing values are left out of the fit
    fit = fit_negbin(counts, x)
    for i, y in enumerate(counts):
        keep = np.isfinite(y)
        want = _statsmodels_nb(y[keep], x[keep])
        mu, mu_want = np.exp(x @ fit.coef[i]), np.exp(x @ want[:-1])
        assert np.max(np.abs(mu / mu_want - 1.0)) < 1e-6
        assert fit.dispersion[i] == pytest.approx(want[-1], rel=1e-5)


def test_offset_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    x = _design()
    offset = np.log(rng.uniform(5e3, 2e4, size=TRAIN))
    y = _nb_draw(rng, np.exp(x @ COEF + offset - 9.0), 0.1)
    fit = fit_negbin(y[None], x, offset=offset[None])
    want = _statsmodels_nb(y, x, offset=offset)
    np.testing.assert_allclose(fit.coef[0], want[:-1], rtol=1e-6, atol=1e-7)
    assert fit.dispersion[0] == pytest.approx(want[-1], rel=1e-6)


def test_underdispersed_series_reach_the_poisson_limit() -> None:
    rng = np.random.default_rng(5)
    x = _design()
    y = rng.poisson(np.exp(x @ COEF)).astype(float)
    fit = fit_negbin(y[None], x)
    assert fit.converged[0]
    assert fit.dispersion[0] == pytest.approx(1e-6)  # the bound: effectively Poisson
    poisson = sm.GLM(y, x, family=sm.families.Poisson()).fit(tol=1e-13)
    # alpha = 1e-6 against exactly 0: means agree to ~alpha * mu
    np.testing.assert_allclose(np.exp(x @ fit.coef[0]), poisson.fittedvalues, rtol=1e-4)


def test_count_tables_and_special_functions_give_the_same_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(8)
    x = _design()
    counts = np.array([_nb_draw(rng, np.exp(x @ COEF) * s, 0.4) for s in (0.5, 3.0)])
    tables = fit_negbin(counts, x)
    monkeypatch.setattr(negbin, "TAIL_LIMIT", -1)  # every series on digamma/trigamma
    direct = fit_negbin(counts, x)
    np.testing.assert_allclose(tables.coef, direct.coef, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(tables.dispersion, direct.dispersion, rtol=1e-7)


def test_trigamma_matches_scipy() -> None:
    x = np.concatenate([np.linspace(1e-4, 12.0, 5000), np.logspace(-3, 8, 500)])
    assert np.max(np.abs(negbin._trigamma(x) / special.polygamma(1, x) - 1.0)) < 1e-8


def test_detector_prediction_and_bound_match_statsmodels() -> None:
    """Expected = exp(x_t'b), bound = NB quantile with alpha + var(x_t'b) from statsmodels."""
    rng = np.random.default_rng(21)
    n = 900
    days = START_DAY + np.arange(n)
    x_all = design_matrix(days, days[-1], 2, True, True)
    y = _nb_draw(rng, np.exp(x_all @ COEF), 0.15)
    t = n - 1
    rows = slice(t - 7 - TRAIN, t - 7)
    x = design_matrix(days[rows], days[t], 2, True, True)
    x_t = design_matrix(days[t : t + 1], days[t], 2, True, True)
    want = _statsmodels_nb(y[rows], x)
    glm = sm.GLM(y[rows], x, family=sm.families.NegativeBinomial(alpha=want[-1])).fit(tol=1e-13)
    pred = glm.get_prediction(x_t, which="linear")
    mu = float(np.exp(pred.predicted[0]))
    spread = want[-1] + float(pred.se[0]) ** 2
    series = make_series(y, start="2020-01-01")
    for uncertainty, disp in [(True, spread), (False, want[-1])]:
        result = detect_nb_glm(series, at=[t], parameter_uncertainty=uncertainty)
        assert result.expected[t] == pytest.approx(mu, rel=1e-6)
        size = 1.0 / disp
        assert result.upperbound[t] == stats.nbinom.ppf(0.99, size, size / (size + mu))
        p = stats.nbinom.sf(y[t] - 1, size, size / (size + mu))
        assert result.p_value[t] == pytest.approx(p, rel=1e-5)
        assert result.score[t] == result.p_value[t]
    assert result.extras["dispersion"][t] == pytest.approx(want[-1], rel=1e-6)
    assert result.extras["converged"][t]


# --- behaviour -------------------------------------------------------------------------------


def _seasonal(seed: int, n: int = 1100, amplitude: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    day = np.arange(n)
    mu = 15.0 * np.exp(amplitude * np.cos(2 * np.pi * (day - 20) / 365.25))
    return _nb_draw(rng, mu, 0.05), mu


def test_season_peak_seen_in_training_does_not_alarm_but_a_spike_does() -> None:
    counts, mu = _seasonal(4)
    peak = np.arange(1095 - 20, 1095 + 5)  # around the third winter peak (day 20 of year 3)
    peak = peak[peak < len(counts)]
    series = make_series(counts, start="2021-01-01")
    seasonal = detect_nb_glm(series, at=peak)
    flat = detect_nb_glm(series, at=peak, harmonics=0)
    assert seasonal.alarm[peak].sum() <= 1
    assert np.all(np.abs(seasonal.expected[peak] / mu[peak] - 1) < 0.25)
    # without harmonics the peak is not expected (the fit averages over the year)
    assert np.all(flat.expected[peak] < 0.7 * mu[peak])

    t = int(peak[10])
    spiked = counts.copy()
    spiked[t] = 3 * mu[t]
    result = detect_nb_glm(make_series(spiked, start="2021-01-01"), at=[t])
    assert result.alarm[t]
    assert result.p_value[t] < 1e-4


def test_guard_period_keeps_an_ongoing_outbreak_out_of_the_baseline() -> None:
    counts, _ = _seasonal(6)
    t = len(counts) - 1
    outbreak = counts.copy()
    outbreak[t - 7 : t] *= 4  # the week before the evaluated day
    a = detect_nb_glm(make_series(counts, start="2021-01-01"), at=[t])
    b = detect_nb_glm(make_series(outbreak, start="2021-01-01"), at=[t])
    assert a.expected[t] == b.expected[t] and a.upperbound[t] == b.upperbound[t]
    c = detect_nb_glm(make_series(outbreak, start="2021-01-01"), at=[t], guard_days=0)
    assert c.expected[t] > a.expected[t]


def test_population_is_an_offset() -> None:
    counts, _ = _seasonal(12, n=760)
    t = 759
    plain = detect_nb_glm(make_series(counts, start="2021-01-01"), at=[t])
    # a constant population is absorbed by the intercept: same fit
    flat = detect_nb_glm(make_series(counts, start="2021-01-01", population=5e4), at=[t])
    assert flat.expected[t] == pytest.approx(plain.expected[t], rel=1e-7)
    assert flat.upperbound[t] == plain.upperbound[t]
    # population doubling on the evaluated day doubles the expected count (a rate model)
    population = np.full(760, 5e4)
    population[t] = 1e5
    grown = detect_nb_glm(make_series(counts, start="2021-01-01", population=population), at=[t])
    assert grown.expected[t] == pytest.approx(2 * plain.expected[t], rel=1e-7)


def test_all_zero_training_window() -> None:
    counts = np.zeros((3, 800))
    counts[1, -1] = 1.0
    counts[2, -1] = np.nan
    t = 799
    result = detect_nb_glm(make_series(counts), at=[t])
    assert result.computed[:, t].all()
    assert np.array_equal(result.expected[:, t], [0.0, 0.0, 0.0])
    assert np.array_equal(result.upperbound[:, t], [0.0, 0.0, 0.0])
    assert result.alarm[:, t].tolist() == [False, True, False]
    assert result.p_value[0, t] == 1.0 and result.p_value[1, t] == 0.0
    assert np.isnan(result.p_value[2, t])
    assert np.isnan(result.extras["dispersion"][:, t]).all()


def test_history_requirements_and_missing_values() -> None:
    counts, _ = _seasonal(9, n=800)
    result = detect_nb_glm(make_series(counts, start="2021-01-01"))
    assert int(np.argmax(result.computed)) == 730 + 7
    assert result.computed[737:].all()
    holes = counts.copy()
    holes[:400] = np.nan  # more than half of the first window missing
    result = detect_nb_glm(make_series(holes, start="2021-01-01"), at=[737, 799])
    assert not result.computed[737] and result.computed[799]


def test_weekly_series_have_no_weekday_terms() -> None:
    rng = np.random.default_rng(2)
    week = np.arange(240)
    mu = 60.0 * np.exp(0.5 * np.cos(2 * np.pi * week / 52.18))
    series = make_series(_nb_draw(rng, mu, 0.03), freq="week", start="2018-01-01")
    result = detect_nb_glm(series)
    assert int(np.argmax(result.computed)) == 104 + 1  # two 52-week years + one guard week
    assert result.alarm[result.computed].mean() < 0.05
    # a weekly fit has 1 + 1 + 4 parameters: 12 training weeks are enough
    detect_nb_glm(series, train_years=12 / 52, at=[239])


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"train_years": 0.0}, "train_years"),
        ({"train_years": 0.02}, "train_years"),
        ({"guard_days": -1}, "guard_days"),
        ({"harmonics": -1}, "harmonics"),
    ],
)
def test_bad_parameters(params: dict[str, float], name: str) -> None:
    with pytest.raises(SeriesError, match=name):
        detect_nb_glm(make_series(np.ones(800)), **params)


def test_registered_with_every_parameter_on_the_result() -> None:
    method = get_method("nb_glm")
    assert not method.sparse
    result = method.run(
        make_series(np.full(760, 3.0)), {"alpha": "0.05", "trend": "false"}, at=[759]
    )
    assert result.params == {
        "alpha": 0.05,
        "train_years": 2.0,
        "guard_days": 7,
        "harmonics": 2,
        "trend": False,
        "parameter_uncertainty": True,
    }


def test_quantile_helpers() -> None:
    mu = np.array([0.5, 4.0, 30.0, 200.0])
    np.testing.assert_array_equal(nb_quantile(mu, 0.0, 0.99), stats.poisson.ppf(0.99, mu))
    size = 1 / 0.3
    want = stats.nbinom.ppf(0.95, size, size / (size + mu))
    np.testing.assert_array_equal(nb_quantile(mu, 0.3, 0.95), want)
    tail = nb_upper_tail(np.array([0.0, 4.0, 31.0, np.nan]), mu, 0.3)
    assert tail[0] == 1.0 and np.isnan(tail[3])
    assert tail[2] == pytest.approx(stats.nbinom.sf(30, size, size / (size + 30.0)))


# --- properties ------------------------------------------------------------------------------

SHORT = {"train_years": 0.5, "harmonics": 1}  # 182-day windows keep the examples fast


def _short_counts(seed: int, n_series: int, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = rng.gamma(1.5, 6.0, size=(n_series, 1)) + 0.5
    return _nb_draw(rng, level * np.ones((1, n)), float(rng.uniform(0.01, 1.0)))


@settings(max_examples=25, deadline=None)
@given(value=st.integers(0, 200), weekly=st.booleans(), uncertainty=st.booleans())
def test_constant_series_never_alarm(value: int, weekly: bool, uncertainty: bool) -> None:
    n = 140 if weekly else 200
    series = make_series(np.full(n, float(value)), freq="week" if weekly else "day")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or division warnings either
        result = detect_nb_glm(
            series, at=slice(-10, None), parameter_uncertainty=uncertainty, **SHORT
        )
    c = result.computed
    assert c.sum() == 10
    assert not result.alarm.any()
    assert np.allclose(result.expected[c], value, rtol=1e-8)
    assert np.all(result.upperbound[c] >= value)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), alpha=st.sampled_from([0.001, 0.01, 0.05, 0.2]))
def test_alarm_iff_count_exceeds_upperbound(seed: int, alpha: float) -> None:
    counts = _short_counts(seed, 3)
    counts[:, -5:] += np.random.default_rng(seed).poisson(20.0, (3, 5))
    result = detect_nb_glm(make_series(counts), at=slice(-15, None), alpha=alpha, **SHORT)
    c = result.computed
    assert np.array_equal(result.alarm[c], counts[c] > result.upperbound[c])
    assert np.all(result.p_value[c][result.alarm[c]] <= alpha)
    assert not result.alarm[~c].any()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_two_dimensional_equals_one_at_a_time(seed: int) -> None:
    counts = _short_counts(seed, 4)
    counts[1] *= 25  # very different scales fitted in one batch
    counts[2, ::9] = np.nan
    counts[3, :150] = 0.0
    whole = detect_nb_glm(make_series(counts), at=slice(-6, None), **SHORT)
    for i, row in enumerate(counts):
        one = detect_nb_glm(make_series(row), at=slice(-6, None), **SHORT)
        for name in ("expected", "upperbound", "p_value", "alarm", "computed"):
            assert np.array_equal(getattr(whole, name)[i], getattr(one, name), equal_nan=True), name


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), back=st.integers(0, 8))
def test_single_point_equals_full_and_ignores_the_future(seed: int, back: int) -> None:
    counts = _short_counts(seed, 2)
    t = counts.shape[1] - 1 - back
    window = slice(t - 4, None)
    full = detect_nb_glm(make_series(counts), at=window, **SHORT)
    single = detect_nb_glm(make_series(counts), at=[t], **SHORT)
    changed = counts.copy()
    changed[:, t + 1 :] = 500.0
    future = detect_nb_glm(make_series(changed), at=window, **SHORT)
    for name in ("expected", "upperbound", "p_value", "alarm"):
        assert np.array_equal(
            getattr(full, name)[:, t], getattr(single, name)[:, t], equal_nan=True
        )
        a, b = getattr(full, name)[:, t - 4 : t + 1], getattr(future, name)[:, t - 4 : t + 1]
        assert np.array_equal(a, b, equal_nan=True), name
