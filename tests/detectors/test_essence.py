"""ESSENCE EWMA, regression and switch (detectors.essence) against CDC's Rnssp.

Three kinds of evidence:

- R goldens: ``tests/detectors/reference/essence_rnssp.R`` restates Rnssp's ``ewma_loop``,
  ``adaptive_regression`` and alert rules in base R (checked identical to Rnssp's own
  ``alert_ewma``/``alert_regression``/``alert_switch`` via its ``RNSSP_R_DIR`` option) and
  wrote ``tests/assets/detectors/essence/*.csv``.
- A slow transcription of the same R loops in plain Python (below), compared with the
  vectorised code on generated series.
- Properties: constant series never alarm, alarm ⇔ count > upperbound (and the upper bound is
  the real threshold), 2-D equals one-at-a-time, ``at=[t]`` equals the full run, later data
  do not change earlier results.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors import SeriesError, get_method, make_series
from detectors.essence import LEVELS, SUB_METHODS
from detectors.series import CountSeries

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "detectors" / "essence"
METHODS = ("ewma", "regression", "switch")
TOL = 1e-9


# ---- Rnssp restated in plain loops (1-based indices as in the R code) ------------------------


def _qt(p: float, df: float) -> float:
    return float(stats.t.ppf(p, df))


def _pt(x: float, df: float) -> float:
    return float(stats.t.cdf(x, df))


def rnssp_ewma(y: list[float], b: int = 28, g: int = 2, w1: float = 0.4, w2: float = 0.9):
    """Rnssp ewma_loop (R/alert_ewma.R, 50b4761): expected, statistic, p per day (None = grey)."""
    n = len(y)
    y1 = [math.nan, *y]  # y1[i] is R's y[i]
    z1 = [math.nan] * (n + 1)
    z2 = [math.nan] * (n + 1)
    out: list[tuple[float, float, float] | None] = [None] * (n + 1)
    min_baseline = 7
    z1[1] = z2[1] = y1[1]
    for i0 in range(2, min_baseline + g + 1):
        z1[i0] = w1 * y1[i0] + (1 - w1) * z1[i0 - 1]
        z2[i0] = w2 * y1[i0] + (1 - w2) * z2[i0 - 1]
    ndx = list(range(1, min_baseline))
    for i in range(min_baseline + g + 1, n + 1):
        if ndx[-1] < b:
            ndx = [0, *ndx]
        ndx = [j + 1 for j in ndx]
        size = len(ndx)
        n_df = size - 1
        base = [y1[j] for j in ndx]
        mu = sum(base) / size
        sd = math.sqrt(sum((v - mu) ** 2 for v in base) / (size - 1))
        ucl_alert = round(_qt(0.99, n_df), 5)
        ucl_warning = round(_qt(0.95, n_df), 5)
        results = []
        for w, z in ((w1, z1), (w2, z2)):
            corr = math.sqrt(
                w / (2 - w) + 1 / size - 2 * (1 - w) ** (g + 1) * ((1 - (1 - w) ** size) / size)
            )
            min_sigma = (w / ucl_warning) * (0.01 + 0.05 * (1 - w) ** 2)
            constant = (0.1289 - (0.2414 - 0.1826 * (1 - w) ** 4) * math.log(0.5)) * (
                w / ucl_warning
            )
            sigma = max(min_sigma, sd * corr + constant)
            z[i] = w * y1[i] + (1 - w) * z[i - 1]
            stat = (z[i] - mu) / sigma
            if abs(stat) > ucl_alert:
                z[i] = mu + math.copysign(1.0, stat) * ucl_alert * sigma
            results.append((stat, 1 - _pt(stat, n_df)))
        (t1, p1), (t2, p2) = results
        out[i] = (mu, t1, p1) if p1 < p2 else (mu, t2, p2)
    return out[1:]


def rnssp_regression(y: list[float], dates: pd.DatetimeIndex, b: int = 28, g: int = 2):
    """Rnssp adaptive_regression (R/alert_regression.R, ae5ba22): (expected, stat, p, adj R²)."""
    n = len(y)
    y1 = [math.nan, *y]
    dow1 = [0, *(int(d) for d in dates.day_of_week)]  # Monday = 0
    out: list[tuple[float, float, float, float] | None] = [None] * (n + 1)
    ndx = list(range(1, 11))
    for i in range(11 + g + 1, n + 1):
        if ndx[-1] < b:
            ndx = [0, *ndx]
        ndx = [j + 1 for j in ndx]
        size = len(ndx)
        n_df = size - 8
        x = np.array(
            [[1.0, t + 1] + [float(dow1[j] == d) for d in range(6)] for t, j in enumerate(ndx)]
        )
        obs = np.array([y1[j] for j in ndx])
        beta = np.linalg.lstsq(x, obs, rcond=None)[0]
        fitted = x @ beta
        res = obs - fitted
        rss = float(np.sum(res**2))
        mss = float(np.sum((fitted - fitted.mean()) ** 2))
        # Documented deviation: a constant baseline gets R² = 0 exactly.
        r2_adj = 0.0 if np.ptp(obs) == 0 else 1 - (1 - mss / (rss + mss)) * ((size - 1) / n_df)
        min_sigma = 0.01 / round(_qt(0.95, n_df), 5)
        sigma = max(
            math.sqrt(rss / n_df) * math.sqrt((size + 7) * (size - 4) / (size * (size - 7))),
            min_sigma,
        )
        test = size + g + 1
        dow = dow1[i]
        forecast = beta[0] + test * beta[1] + (beta[2 + dow] if dow < 6 else 0.0)
        expected = max(0.0, float(forecast))
        stat = (y1[i] - expected) / sigma
        out[i] = (expected, stat, 1 - _pt(stat, n_df), r2_adj)
    return out[1:]


def level_of(p: float | None) -> str:
    if p is None:
        return ""
    return "red" if p < 0.01 else "yellow" if p < 0.05 else "none"


def rnssp_regression_levels(y: list[float], dates: pd.DatetimeIndex, ps: list[float | None]):
    """alert_regression's rule: withdraw alerts below the 7-day (and weekend weekday) mean."""
    levels = [level_of(p) for p in ps]
    dow = list(dates.day_of_week)
    for i, level in enumerate(levels):
        if level not in ("red", "yellow") or i < 6:
            continue
        if not y[i] < sum(y[i - 6 : i + 1]) / 7:
            continue
        weekend_below = i >= 42 and y[i] < sum(y[i - 42 : i + 1 : 7]) / 7
        if dow[i] < 5 or weekend_below:
            levels[i] = "none"
    return levels


def rnssp_switch(y: list[float], dates: pd.DatetimeIndex):
    """alert_switch: regression rows with adjusted R² ≥ 0.60, EWMA rows for the rest."""
    ewma = rnssp_ewma(y)
    reg = rnssp_regression(y, dates)
    reg_levels = rnssp_regression_levels(y, dates, [r[2] if r else None for r in reg])
    rows = []
    for e, r, level in zip(ewma, reg, reg_levels, strict=True):
        if r is not None and r[3] >= 0.60:
            rows.append(("regression", r[0], r[1], r[2], level))
        elif e is not None:
            rows.append(("ewma", e[0], e[1], e[2], level_of(e[2])))
        else:
            rows.append(None)
    return rows


# ---- helpers ---------------------------------------------------------------------------------


def _series(counts: object, start: str = "2024-01-03") -> CountSeries:
    return make_series(np.asarray(counts, dtype=float), start=start)


def _reference_rows(method: str, y: list[float], dates: pd.DatetimeIndex):
    """(expected, statistic, p, level) per day from the loop transcription (None = grey)."""
    if method == "ewma":
        return [None if e is None else (*e, level_of(e[2])) for e in rnssp_ewma(y)]
    if method == "regression":
        reg = rnssp_regression(y, dates)
        levels = rnssp_regression_levels(y, dates, [r[2] if r else None for r in reg])
        return [None if r is None else (*r[:3], lv) for r, lv in zip(reg, levels, strict=True)]
    return [None if s is None else s[1:] for s in rnssp_switch(y, dates)]


def _names(codes: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Decode int8 extras codes; -1 (not computed) → ""."""
    table = np.array([*names, ""])
    return table[np.where(codes < 0, len(names), codes)]


def _levels(result: object) -> np.ndarray:
    return _names(result.extras["level"], LEVELS)  # type: ignore[attr-defined]


def _methods(result: object) -> np.ndarray:
    return _names(result.extras["method"], SUB_METHODS)  # type: ignore[attr-defined]


def _near_boundary(p: float) -> bool:
    return min(abs(p - 0.01), abs(p - 0.05)) < 1e-9


def _load(name: str) -> pd.DataFrame:
    return pd.read_csv(ASSETS / f"{name}.csv", keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def inputs() -> pd.DataFrame:
    return _load("inputs")


# ---- R goldens -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_matches_rnssp_goldens(method: str, inputs: pd.DataFrame) -> None:
    golden = _load(method)
    checked = 0
    for name, rows in inputs.groupby("series", sort=False):
        series = make_series(rows["count"].to_numpy(float), rows["date"])
        result = get_method(method).run(series)
        ref = golden[golden["series"] == name]
        grey = ref["alert"].eq("grey").to_numpy()
        np.testing.assert_array_equal(result.computed, ref["p_value"].notna().to_numpy())
        done = result.computed
        np.testing.assert_allclose(result.p_value[done], ref["p_value"][done], rtol=0, atol=TOL)
        for column, ours in (("expected", result.expected), ("test_statistic", result.score)):
            np.testing.assert_allclose(ours[done], ref[column][done], rtol=TOL, atol=TOL)
        # Rnssp's regression rule also turns some grey days blue; compare computed days only.
        levels = ref["alert"].replace({"blue": "none"}).to_numpy()
        np.testing.assert_array_equal(_levels(result)[done], levels[done])
        assert (result.extras["level"][~done] == -1).all()
        assert not grey[done].any()
        if method == "switch":
            np.testing.assert_array_equal(_methods(result), ref["detector"].fillna(""))
        if method == "regression" and name != "constant":
            # Rnssp's R² of a constant non-zero baseline is rounding noise (module deviation 4).
            np.testing.assert_allclose(
                result.extras["adj_r_squared"][done], ref["adj_r_squared"][done], atol=TOL
            )
        checked += int(done.sum())
    assert checked > 1000


def test_goldens_cover_the_interesting_cases() -> None:
    reg = _load("regression")
    withdrawn = reg[reg["suppressed"] & reg["p_value"].lt(0.01)]
    dates = pd.to_datetime(withdrawn["date"])
    assert (dates.dt.day_of_week < 5).any() and (dates.dt.day_of_week >= 5).any()
    kept_weekend = reg[reg["alert"].eq("red") & (pd.to_datetime(reg["date"]).dt.day_of_week >= 5)]
    assert len(kept_weekend) > 0
    switch = _load("switch")
    assert {"ewma", "regression"} <= set(switch["detector"].dropna())
    assert switch.groupby("series")["detector"].nunique().max() >= 2
    for name in ("ewma", "regression", "switch"):
        assert {"red", "yellow", "blue", "grey"} <= set(_load(name)["alert"])


def test_loop_transcription_reproduces_goldens(inputs: pd.DataFrame) -> None:
    # The slow Python restatement used by the property tests agrees with R too.
    for method in METHODS:
        golden = _load(method)
        for name in ("poisson_spikes", "burst_weekend", "sparse", "short"):
            rows = inputs[inputs["series"] == name]
            dates = pd.DatetimeIndex(pd.to_datetime(rows["date"]))
            ref = golden[golden["series"] == name]
            ours = _reference_rows(method, rows["count"].astype(float).tolist(), dates)
            for row, (_, want) in zip(ours, ref.iterrows(), strict=True):
                if row is None:
                    assert want["alert"] == "grey" or np.isnan(want["p_value"])
                    continue
                assert row[2] == pytest.approx(want["p_value"], abs=TOL)
                assert row[0] == pytest.approx(want["expected"], rel=TOL, abs=TOL)
                assert row[3] == want["alert"].replace("blue", "none")


# ---- worked examples -------------------------------------------------------------------------


def test_single_case_after_zero_baseline_is_red_as_in_rnssp() -> None:
    y = np.zeros(45)
    y[40] = 1.0
    result = get_method("ewma").run(_series(y))
    # Baseline: 28 zeros → mean 0, sd 0, so sigma_k is Rnssp's constant term alone.
    q95 = round(stats.t.ppf(0.95, 27), 5)
    sigma = {
        w: (0.1289 - (0.2414 - 0.1826 * (1 - w) ** 4) * math.log(0.5)) * (w / q95)
        for w in (0.4, 0.9)
    }
    stat = {w: w * 1.0 / sigma[w] for w in sigma}  # z = w·1 + (1-w)·0
    best = max(stat.values())
    assert result.expected[40] == 0.0
    assert result.score[40] == pytest.approx(best, rel=1e-12)
    assert result.p_value[40] == pytest.approx(1 - stats.t.cdf(best, 27), rel=1e-9)
    assert result.alarm[40] and _levels(result)[40] == "red"
    # The upper bound: the smallest EWMA step that crosses the 99 % quantile.
    crit = stats.t.ppf(0.99, 27)
    assert result.upperbound[40] == pytest.approx(min(crit * s / w for w, s in sigma.items()))
    assert not result.alarm[:40].any()


def test_regression_extrapolates_an_exact_trend_and_weekday_pattern() -> None:
    days = np.arange(60)
    dates = pd.date_range("2024-01-01", periods=60)  # a Monday
    weekday_effect = np.array([6.0, 4.0, 4.0, 3.0, 2.0, -5.0, -8.0])
    y = 20 + 0.5 * days + weekday_effect[dates.day_of_week]
    series = make_series(y, dates)
    result = get_method("regression").run(series)
    done = result.computed
    assert done[13:].all() and not done[:13].any()
    np.testing.assert_allclose(result.expected[done], y[done], rtol=1e-9)
    assert (result.extras["adj_r_squared"][done] > 0.999).all()
    assert not result.alarm.any()
    # The residual sd is ~0, so sigma is Rnssp's floor 0.01 / q95(L - 8) with L = 28.
    floor = 0.01 / round(stats.t.ppf(0.95, 20), 5)
    bump = y.copy()
    bump[50] += 0.1
    bumped = get_method("regression").run(make_series(bump, dates))
    assert bumped.score[50] == pytest.approx(0.1 / floor, rel=1e-6)
    assert bumped.alarm[50]
    assert result.upperbound[50] == pytest.approx(y[50] + stats.t.ppf(0.99, 20) * floor, rel=1e-9)


# ---- the vectorised code against the loop transcription --------------------------------------

STARTS = [f"2024-01-{day:02d}" for day in range(1, 8)]  # every weekday first


@st.composite
def count_series(draw: st.DrawFn, min_len: int = 10, max_len: int = 75) -> tuple[list[int], str]:
    n = draw(st.integers(min_len, max_len))
    top = draw(st.sampled_from([1, 3, 30, 2000]))
    values = draw(st.lists(st.integers(0, top), min_size=n, max_size=n))
    return values, draw(st.sampled_from(STARTS))


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=count_series(min_len=10, max_len=75))
def test_vectorised_equals_rnssp_loops(method: str, data: tuple[list[int], str]) -> None:
    values, start = data
    series = _series(values, start)
    result = get_method(method).run(series)
    rows = _reference_rows(method, [float(v) for v in values], series.dates)
    for t, row in enumerate(rows):
        assert result.computed[t] == (row is not None)
        if row is None:
            continue
        expected, stat, p, level = row
        if method == "switch":
            r2 = result.extras["adj_r_squared"][t]
            if not np.isnan(r2) and abs(r2 - 0.6) < 1e-9:
                continue  # rounding decides the branch
            want = "regression" if not np.isnan(r2) and r2 >= 0.6 else "ewma"
            assert _methods(result)[t] == want
        assert result.p_value[t] == pytest.approx(p, abs=TOL)
        assert result.expected[t] == pytest.approx(expected, rel=TOL, abs=TOL)
        assert result.score[t] == pytest.approx(stat, rel=1e-7, abs=1e-7)
        if not _near_boundary(p):
            assert _levels(result)[t] == level


# ---- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=40, deadline=None)
@given(
    value=st.one_of(st.integers(0, 5000).map(float), st.floats(0, 1e4, allow_nan=False)),
    n=st.integers(10, 90),
    start=st.sampled_from(STARTS),
)
def test_constant_series_never_alarms(method: str, value: float, n: int, start: str) -> None:
    result = get_method(method).run(_series([value] * n, start))
    assert result.computed[9 if method != "regression" else 13 :].all()
    assert not result.alarm.any()
    assert set(_levels(result)[result.computed]) <= {"none"}
    assert (result.upperbound[result.computed] > value).all()


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30, deadline=None)
@given(data=count_series(min_len=16, max_len=80), pick=st.integers(0, 10_000))
def test_upperbound_is_the_alarm_threshold(
    method: str, data: tuple[list[int], str], pick: int
) -> None:
    values, start = data
    y = np.array(values, dtype=float)
    result = get_method(method).run(_series(y, start))
    done = result.computed
    np.testing.assert_array_equal(result.alarm[done], y[done] > result.upperbound[done])
    np.testing.assert_array_equal(result.alarm, _levels(result) == "red")
    # Moving only the day's count across the bound turns the alarm on and off.
    t = int(np.flatnonzero(done)[pick % int(done.sum())])
    bound = float(result.upperbound[t])
    step = 1e-6 * max(1.0, abs(bound))
    for value, alarm in ((bound + step, True), (bound - step, False)):
        if value < 0:
            continue
        moved = y.copy()
        moved[t] = value
        again = get_method(method).run(_series(moved, start), at=[t])
        assert again.upperbound[t] == pytest.approx(bound, rel=1e-12, abs=1e-12)
        assert bool(again.alarm[t]) is alarm


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def _fields(result: object) -> dict[str, np.ndarray]:
    names = ("expected", "upperbound", "score", "p_value", "alarm", "computed")
    out = {name: getattr(result, name) for name in names}
    out.update(result.extras)  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(2, 5).flatmap(
        lambda k: st.integers(16, 70).flatmap(
            lambda n: st.lists(
                st.lists(st.integers(0, 40), min_size=n, max_size=n), min_size=k, max_size=k
            )
        )
    ),
    start=st.sampled_from(STARTS),
)
def test_many_series_equal_one_at_a_time(method: str, rows: list[list[int]], start: str) -> None:
    together = _fields(get_method(method).run(_series(rows, start)))
    for i, row in enumerate(rows):
        alone = _fields(get_method(method).run(_series(row, start)))
        for name, values in alone.items():
            assert values.ndim == 1
            assert _same(together[name][i], values), name


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=25, deadline=None)
@given(data=count_series(min_len=16, max_len=80), pick=st.integers(0, 10_000))
def test_at_one_day_equals_full_run(method: str, data: tuple[list[int], str], pick: int) -> None:
    values, start = data
    series = _series(values, start)
    full = _fields(get_method(method).run(series))
    t = 9 + pick % (len(values) - 9)
    one = _fields(get_method(method).run(series, at=[t]))
    assert one["computed"].sum() == int(full["computed"][t])
    for name, values_full in full.items():
        assert _same(one[name][t : t + 1], values_full[t : t + 1]), name


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=25, deadline=None)
@given(
    data=count_series(min_len=20, max_len=80),
    cut=st.integers(0, 10_000),
    tail=st.lists(st.integers(0, 500), min_size=80, max_size=80),
)
def test_later_data_do_not_change_earlier_days(
    method: str, data: tuple[list[int], str], cut: int, tail: list[int]
) -> None:
    values, start = data
    t = 9 + cut % (len(values) - 10)
    changed = values[: t + 1] + tail[: len(values) - t - 1]
    before = _fields(get_method(method).run(_series(values, start)))
    after = _fields(get_method(method).run(_series(changed, start)))
    for name in before:
        assert _same(before[name][: t + 1], after[name][: t + 1]), name


# ---- behaviour and parameters ----------------------------------------------------------------


def test_registered_with_sparse_flags_and_recorded_params() -> None:
    assert get_method("ewma").sparse and get_method("switch").sparse
    assert not get_method("regression").sparse
    result = get_method("switch").run(_series(np.arange(40) % 5))
    assert dict(result.params) == {
        "b": 28,
        "g": 2,
        "w1": 0.4,
        "w2": 0.9,
        "red": 0.01,
        "yellow": 0.05,
        "min_adj_r_squared": 0.6,
        "suppress_below_ma7": True,
    }
    resolved = get_method("regression").resolve({"b": "35", "suppress_below_ma7": "false"})
    assert resolved == {"b": 35, "suppress_below_ma7": False}


def test_suppression_rule_can_be_switched_off(inputs: pd.DataFrame) -> None:
    rows = inputs[inputs["series"] == "burst_weekday"]
    series = make_series(rows["count"].to_numpy(float), rows["date"])
    day = int(np.flatnonzero(rows["date"].to_numpy() == "2024-04-04")[0])
    on = get_method("regression").run(series)
    off = get_method("regression").run(series, suppress_below_ma7=False)
    assert on.p_value[day] < 0.01 and not on.alarm[day] and on.extras["suppressed"][day]
    assert off.alarm[day] and not off.extras["suppressed"].any()
    np.testing.assert_array_equal(off.alarm, off.computed & (off.p_value < 0.01))
    # The bound moves up to the count below which the rule withdraws the alert.
    assert on.upperbound[day] > off.upperbound[day]
    assert on.upperbound[day] >= series.counts[0, day]


def test_missing_days_are_skipped_not_guessed() -> None:
    y = np.random.default_rng(3).poisson(10, 90).astype(float)
    y[20] = np.nan
    for method in METHODS:
        result = get_method(method).run(_series(y))
        # Day 20 itself and every day whose baseline [t-2-28, t-2) holds day 20 (23…50).
        assert not result.computed[20] and not result.computed[23:51].any(), method
        assert result.computed[21:23].all() and result.computed[51:].all(), method
        assert np.isfinite(result.p_value[51:]).all()


def test_ewma_runs_on_weekly_series_regression_needs_days() -> None:
    weekly = make_series(np.full(40, 3.0), freq="week")
    assert get_method("ewma").run(weekly).computed[9:].all()
    for method in ("regression", "switch"):
        with pytest.raises(SeriesError, match="daily"):
            get_method(method).run(weekly)


def test_short_series_compute_what_they_can() -> None:
    result = get_method("switch").run(_series([4, 5, 6, 5, 4, 5, 6, 5, 4, 5, 7, 3]))
    np.testing.assert_array_equal(result.computed, np.arange(12) >= 9)
    assert (_methods(result)[9:] == "ewma").all()


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("ewma", {"b": 6}, "b "),
        ("ewma", {"g": -1}, "g "),
        ("ewma", {"w1": 0.0}, "w1"),
        ("ewma", {"w2": 1.5}, "w2"),
        ("ewma", {"red": 0.0}, "red"),
        ("ewma", {"yellow": 0.005}, "yellow"),
        ("regression", {"b": 7}, "multiple of 7"),
        ("regression", {"b": 30}, "multiple of 7"),
        ("switch", {"min_adj_r_squared": 1.5}, "min_adj_r_squared"),
    ],
)
def test_bad_parameters_are_named(method: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(SeriesError, match=message):
        get_method(method).run(_series(np.ones(40)), params)


@pytest.mark.parametrize(
    ("b", "g", "w1", "w2"), [(14, 0, 0.3, 0.8), (35, 1, 0.5, 1.0), (21, 5, 0.2, 0.7)]
)
def test_other_parameters_follow_rnssp_loops(b: int, g: int, w1: float, w2: float) -> None:
    rng = np.random.default_rng(b + g)
    y = rng.poisson(np.where(np.arange(110) % 7 >= 5, 4.0, 15.0)).astype(float)
    y[[60, 61, 90]] += [20, 25, 30]
    series = _series(y, "2024-01-05")
    ewma = get_method("ewma").run(series, b=b, g=g, w1=w1, w2=w2)
    reg = get_method("regression").run(series, b=b, g=g, suppress_below_ma7=False)
    want_e = rnssp_ewma(y.tolist(), b=b, g=g, w1=w1, w2=w2)
    want_r = rnssp_regression(y.tolist(), series.dates, b=b, g=g)
    for result, rows in ((ewma, want_e), (reg, want_r)):
        np.testing.assert_array_equal(result.computed, [row is not None for row in rows])
        done = np.flatnonzero(result.computed)
        np.testing.assert_allclose(result.p_value[done], [rows[t][2] for t in done], atol=TOL)
        np.testing.assert_allclose(
            result.expected[done], [rows[t][0] for t in done], rtol=TOL, atol=TOL
        )
    assert ewma.alarm.any() and reg.alarm.any()
