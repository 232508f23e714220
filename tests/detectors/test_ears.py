"""EARS C1/C2/C3: parity with R surveillance::earsC, hand-computed cases and invariants.

Goldens: tests/assets/detectors/ears, written by tests/detectors/reference/ears_cusum.R.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from detectors.ears import detect_ears_c1, detect_ears_c2, detect_ears_c3
from detectors.registry import get_method
from detectors.result import DetectorResult
from detectors.series import CountSeries, SeriesError, make_series

GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "detectors" / "ears"
DETECT: dict[str, Callable[..., DetectorResult]] = {
    "c1": detect_ears_c1,
    "c2": detect_ears_c2,
    "c3": detect_ears_c3,
}
CASES: list[dict[str, Any]] = [
    {str(k): v for k, v in case.items()}
    for case in pd.read_csv(GOLDEN / "settings.csv").to_dict("records")
]


def load_counts(dataset: str) -> tuple[CountSeries, list[str]]:
    frame = pd.read_csv(GOLDEN / f"{dataset}.counts.csv", index_col="date")
    return make_series(frame.to_numpy(float).T, pd.to_datetime(frame.index)), list(frame.columns)


def load_r(dataset: str, setting: str) -> tuple[np.ndarray, np.ndarray]:
    """R's upperbound and alarm (1.0/0.0, NaN = NA) as n_series x n_times arrays."""
    ub = pd.read_csv(GOLDEN / f"{dataset}.{setting}.upperbound.csv").to_numpy(float).T
    alarm = pd.read_csv(GOLDEN / f"{dataset}.{setting}.alarm.csv").to_numpy(float).T
    return ub, alarm


def run_case(case: dict[str, Any]) -> tuple[CountSeries, DetectorResult]:
    series, _ = load_counts(str(case["dataset"]))
    result = DETECT[str(case["method"])](
        series,
        baseline=int(case["baseline"]),
        alpha=float(case["alpha"]),
        min_sigma=float(case["min_sigma"]),
    )
    return series, result


# ---------------------------------------------------------------- parity with R


def test_goldens_cover_the_required_data() -> None:
    versions = (GOLDEN / "versions.txt").read_text()
    assert "surveillance 1.20.3" in versions and "R version 4.2.2" in versions
    n_series = sum(load_counts(d)[0].n_series for d in {c["dataset"] for c in CASES})
    assert n_series >= 40
    sim, _ = load_counts("sim")
    assert sim.n_series >= 20 and sim.n_times >= 700 and sim.freq == "day"
    assert {c["setting"] for c in CASES} >= {"c1", "c2", "c3"}
    assert len({(c["method"], c["baseline"], c["alpha"], c["min_sigma"]) for c in CASES}) >= 6


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['dataset']}-{c['setting']}")
def test_matches_r_earsc(case: dict[str, Any]) -> None:
    series, result = run_case(case)
    r_ub, r_alarm = load_r(str(case["dataset"]), str(case["setting"]))
    # computed exactly where R has an upper bound
    np.testing.assert_array_equal(result.computed, ~np.isnan(r_ub))
    both = ~np.isnan(r_ub)
    relative = np.abs(result.upperbound[both] - r_ub[both]) / np.maximum(np.abs(r_ub[both]), 1e-12)
    assert relative.max() <= 1e-6, f"max relative error {relative.max():.2e}"
    has_alarm = ~np.isnan(r_alarm)
    agreement = np.mean(result.alarm[has_alarm] == (r_alarm[has_alarm] == 1))
    assert agreement >= 0.995, f"alarms agree on {agreement:.4%}"
    # R's alarm is NA only where its bound is NA or today's count is missing
    today_missing = both & ~has_alarm
    assert np.isnan(series.counts[today_missing]).all()
    assert not result.alarm[today_missing].any()


def test_parity_includes_alarms_and_sparse_points() -> None:
    """The goldens exercise what matters: many alarms, R's NaN bounds, missing counts."""
    alarms = not_computed_in_range = 0
    for case in CASES:
        _, result = run_case(case)
        _, r_alarm = load_r(str(case["dataset"]), str(case["setting"]))
        alarms += int(np.nansum(r_alarm))
        first = int(case["baseline"]) + {"c1": 0, "c2": 2, "c3": 4}[str(case["method"])]
        not_computed_in_range += int((~result.computed[:, first:]).sum())
    assert alarms > 1000
    assert not_computed_in_range > 1000


# ---------------------------------------------------------------- hand-computed cases

Z999 = norm.ppf(0.999)


def test_c1_by_hand() -> None:
    counts = [1, 2, 3, 4, 5, 6, 7, 20, 4]
    result = detect_ears_c1(make_series(counts))
    base = counts[0:7]
    mean, sd = statistics.mean(base), statistics.stdev(base)
    assert result.expected[7] == pytest.approx(mean)
    assert result.upperbound[7] == pytest.approx(mean + Z999 * sd, rel=1e-12)
    assert result.score[7] == pytest.approx((20 - mean) / sd, rel=1e-12)
    assert np.isnan(result.p_value).all()  # R's EARS defines no p-value
    assert result.alarm[7] and not result.alarm[8]
    assert not result.computed[:7].any() and result.computed[7:].all()
    base8 = counts[1:8]
    assert result.upperbound[8] == pytest.approx(
        statistics.mean(base8) + Z999 * statistics.stdev(base8), rel=1e-12
    )


def test_c2_skips_the_two_days_before() -> None:
    counts = [5, 6, 5, 7, 6, 5, 6, 100, 100, 6]
    result = detect_ears_c2(make_series(counts), min_sigma=0.5)
    base = counts[0:7]  # for t = 9: days 0..6, not the outbreak on days 7 and 8
    sd = max(statistics.stdev(base), 0.5)
    assert result.upperbound[9] == pytest.approx(statistics.mean(base) + Z999 * sd, rel=1e-12)
    assert not result.alarm[9]
    assert not result.computed[:9].any()


def reference_shewhart(
    values: list[float], baseline: int, gap: int, alpha: float, min_sigma: float
) -> list[float]:
    """C1 (gap 1) / C2 (gap 3) upper bounds from the published formula, one point at a time."""
    z = norm.ppf(1 - alpha)
    out = [float("nan")] * len(values)
    for t in range(baseline + gap - 1, len(values)):
        window = values[t - gap - baseline + 1 : t - gap + 1]
        out[t] = statistics.mean(window) + z * max(statistics.stdev(window), min_sigma)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=15, max_size=40),
    st.sampled_from([0.0, 0.25, 1e-3]),
    st.sampled_from([("c1", 1), ("c2", 3)]),
    st.integers(3, 8),
)
def test_c1_c2_match_the_formula_for_whole_and_fractional_counts(
    counts: list[int], fraction: float, method: tuple[str, int], baseline: int
) -> None:
    """Whole numbers take exact integer sums, fractions the two-pass path: both agree."""
    values = [c + fraction * (i % 3) for i, c in enumerate(counts)]
    result = DETECT[method[0]](make_series(values), baseline=baseline, alpha=0.01, min_sigma=0.5)
    expected = reference_shewhart(values, baseline, method[1], 0.01, 0.5)
    np.testing.assert_allclose(result.upperbound, expected, rtol=1e-12)


def reference_c3(counts: list[float], baseline: int, alpha: float, min_sigma: float) -> list[float]:
    """R's earsC C3 code, literally, one point at a time (NaN where R has NA)."""
    z = norm.ppf(1 - alpha)

    def c2(t: int) -> tuple[float, float]:
        window = counts[t - baseline - 2 : t - 2]
        sigma = max(statistics.stdev(window), min_sigma)
        mean = statistics.mean(window)
        if sigma == 0:
            diff = counts[t] - mean
            return (float("nan") if diff == 0 else float("inf") * np.sign(diff)), sigma
        return (counts[t] - mean) / sigma, sigma

    out = [float("nan")] * len(counts)
    for t in range(baseline + 4, len(counts)):
        part = sum(
            max(0.0, c2(t - lag)[0] - 1) if not np.isnan(c2(t - lag)[0]) else np.nan
            for lag in (2, 1)
        )
        sigma = c2(t)[1]
        spread = z - part
        bound = np.nan if (sigma == 0 and np.isinf(spread)) else counts[t] + sigma * spread
        out[t] = np.nan if np.isnan(bound) else max(0.0, bound)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=12, max_size=40),
    st.sampled_from([3, 5, 7]),
    st.sampled_from([0.0, 0.5]),
)
def test_c3_matches_a_literal_transcription_of_r(
    counts: list[int], baseline: int, min_sigma: float
) -> None:
    values = [float(c) for c in counts]
    result = detect_ears_c3(make_series(values), baseline=baseline, min_sigma=min_sigma)
    expected = np.array(reference_c3(values, baseline, 0.025, min_sigma))
    np.testing.assert_allclose(result.upperbound, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(result.computed, ~np.isnan(expected))


def test_c3_alarm_depends_on_the_two_previous_days() -> None:
    """R's C3: alarm when yesterday's and the day before's C2 excesses exceed z (count > 0)."""
    quiet = [4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4]
    spike = detect_ears_c3(make_series([*quiet, 30, 30, 1]))
    assert spike.alarm[13] and spike.score[13] > norm.ppf(0.975)
    assert not spike.alarm[11]  # today's spike alone does not alarm
    zero_today = detect_ears_c3(make_series([*quiet, 30, 30, 0]))
    assert zero_today.upperbound[13] == 0 and not zero_today.alarm[13]


def test_missing_counts_follow_r() -> None:
    counts = np.array([3.0, 4, 5, 4, 3, 4, 5, 4, np.nan, 4, 5, 4, 3, 4, 5, 4, 9])
    result = detect_ears_c1(make_series(counts))
    # a missing count in the window: no bound; on the day itself: a bound but no alarm
    assert result.computed[8] and not result.alarm[8]
    assert not result.computed[9:16].any() and result.computed[16]


# ---------------------------------------------------------------- invariants

count_rows = st.lists(st.integers(0, 30), min_size=20, max_size=60)
methods = st.sampled_from(sorted(DETECT))
params = st.fixed_dictionaries(
    {
        "baseline": st.integers(3, 10),
        "alpha": st.sampled_from([0.001, 0.01, 0.05, 0.2]),
        "min_sigma": st.sampled_from([0.0, 0.3, 1.0]),
    }
)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 50), st.integers(15, 60), methods, params)
def test_a_constant_series_never_alarms(value: int, n: int, method: str, kw: dict) -> None:
    result = DETECT[method](make_series(np.full(n, float(value))), **kw)
    assert not result.alarm.any()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(20, 60).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(0, 30), min_size=n, max_size=n), min_size=1, max_size=5
        )
    ),
    methods,
    params,
)
def test_alarm_iff_count_exceeds_upperbound(rows: list[list[int]], method: str, kw: dict) -> None:
    series = make_series(np.array(rows, dtype=float))
    result = DETECT[method](series, **kw)
    c = result.computed
    np.testing.assert_array_equal(result.alarm[c], series.counts[c] > result.upperbound[c])
    assert not result.alarm[~c].any() and np.isnan(result.upperbound[~c]).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(20, 60), methods, params, st.integers(0, 2**31))
def test_many_series_at_once_equal_one_at_a_time(
    k: int, n: int, method: str, kw: dict, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(2, 0.3, size=(k, n)).astype(float)
    counts[rng.random((k, n)) < 0.05] = np.nan
    together = DETECT[method](make_series(counts), **kw)
    for i in range(k):
        alone = DETECT[method](make_series(counts[i]), **kw)
        for field in ("expected", "upperbound", "score"):
            np.testing.assert_array_equal(getattr(alone, field), getattr(together, field)[i])
        for name, values in together.extras.items():
            np.testing.assert_array_equal(alone.extras[name], values[i])
        np.testing.assert_array_equal(alone.alarm, together.alarm[i])
        np.testing.assert_array_equal(alone.computed, together.computed[i])


@settings(max_examples=40, deadline=None)
@given(count_rows, methods, params, st.integers(0, 59), st.integers(0, 2**31))
def test_results_do_not_look_ahead(
    counts: list[int], method: str, kw: dict, cut: int, seed: int
) -> None:
    cut = min(cut, len(counts) - 1)
    changed = np.array(counts, dtype=float)
    changed[cut + 1 :] = np.random.default_rng(seed).integers(0, 100, len(counts) - cut - 1)
    before = DETECT[method](make_series(counts), **kw)
    after = DETECT[method](make_series(changed), **kw)
    np.testing.assert_array_equal(before.upperbound[: cut + 1], after.upperbound[: cut + 1])
    np.testing.assert_array_equal(before.alarm[: cut + 1], after.alarm[: cut + 1])


@settings(max_examples=40, deadline=None)
@given(count_rows, methods, params, st.data())
def test_evaluating_some_points_gives_the_same_values(
    counts: list[int], method: str, kw: dict, data: st.DataObject
) -> None:
    series = make_series(np.array([counts, counts[::-1]], dtype=float))
    everything = DETECT[method](series, **kw)
    at = data.draw(st.lists(st.integers(0, len(counts) - 1), min_size=1, max_size=5, unique=True))
    some = DETECT[method](series, at=at, **kw)
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[at] = True
    np.testing.assert_array_equal(some.computed, everything.computed & chosen)
    for field in ("expected", "upperbound", "score", "alarm"):
        np.testing.assert_array_equal(
            getattr(some, field)[:, at], getattr(everything, field)[:, at]
        )
    last = DETECT[method](series, at=[len(counts) - 1], **kw)
    np.testing.assert_array_equal(last.upperbound[:, -1], everything.upperbound[:, -1])


# ---------------------------------------------------------------- interface


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"baseline": 2}, "baseline"),
        ({"baseline": 3.5}, "baseline"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.2}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"min_sigma": -0.1}, "min_sigma"),
    ],
)
@pytest.mark.parametrize("method", sorted(DETECT))
def test_bad_parameters_are_refused_by_name(method: str, kw: dict, name: str) -> None:
    with pytest.raises(SeriesError, match=name):
        DETECT[method](make_series(np.arange(30.0)), **kw)


@pytest.mark.parametrize(
    ("method", "alpha", "first"), [("c1", 0.001, 7), ("c2", 0.001, 9), ("c3", 0.025, 11)]
)
def test_registered_with_r_defaults(method: str, alpha: float, first: int) -> None:
    registered = get_method(f"ears_{method}")
    assert registered.sparse
    assert dict(registered.defaults) == {"baseline": 7, "alpha": alpha, "min_sigma": 0.0}
    result = registered.run(make_series(np.arange(20.0)), {"baseline": "7"})
    assert result.method == f"ears_{method}"
    assert dict(result.params) == {"baseline": 7, "alpha": alpha, "min_sigma": 0.0}
    assert np.flatnonzero(result.computed)[0] == first


def test_short_and_weekly_series() -> None:
    short = detect_ears_c3(make_series(np.array([[1.0, 2, 3, 4, 5], [0, 0, 0, 0, 0]])))
    assert not short.computed.any() and short.upperbound.shape == (2, 5)
    dates = pd.date_range("2024-01-01", periods=12, freq="7D")
    weekly = detect_ears_c1(make_series(np.arange(12.0), dates))
    assert weekly.computed[7:].all()
