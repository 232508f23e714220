"""The backtesting primitives: simulated baselines, outbreak injection, detection scores."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import lognorm

from detectors.evaluation import (
    OUTBREAK_COLUMNS,
    inject_outbreaks,
    outbreak_profile,
    score_detection,
    simulate_baselines,
)
from detectors.series import SeriesError

# -- simulated baselines -----------------------------------------------------------------


def test_baselines_are_reproducible_and_seed_dependent() -> None:
    a = simulate_baselines(5, 100, np.random.default_rng(3))
    b = simulate_baselines(5, 100, np.random.default_rng(3))
    c = simulate_baselines(5, 100, np.random.default_rng(4))
    assert a.counts.shape == (5, 100) and a.dates[0] == pd.Timestamp("2022-01-03")
    np.testing.assert_array_equal(a.counts, b.counts)
    assert not np.array_equal(a.counts, c.counts)
    assert (a.counts >= 0).all() and np.array_equal(a.counts, np.round(a.counts))


def test_default_means_span_street_level_counts() -> None:
    sim = simulate_baselines(400, 365, np.random.default_rng(0), seasonality=0.0)
    yearly = sim.expected.mean(axis=1)
    assert 0.3 <= yearly.min() < 0.5 and 15 < yearly.max() <= 20


def test_negative_binomial_mean_and_variance() -> None:
    # θ = 5, μ = 10: variance μ + μ²/θ = 30.
    flat = (1.0,) * 7
    sim = simulate_baselines(
        400, 365, np.random.default_rng(1), mean=10.0, seasonality=0.0, weekly=flat
    )
    np.testing.assert_allclose(sim.expected, 10.0)
    np.testing.assert_allclose(sim.sd, np.sqrt(30.0))
    assert sim.counts.mean() == pytest.approx(10.0, rel=0.01)
    assert sim.counts.var() == pytest.approx(30.0, rel=0.03)


def test_poisson_when_dispersion_is_infinite() -> None:
    sim = simulate_baselines(
        300,
        365,
        np.random.default_rng(2),
        mean=4.0,
        seasonality=0.0,
        weekly=(1.0,) * 7,
        dispersion=np.inf,
    )
    np.testing.assert_allclose(sim.sd, np.sqrt(sim.expected))
    assert sim.counts.var() == pytest.approx(4.0, rel=0.03)


def test_seasonality_keeps_the_yearly_mean_and_peaks_in_winter() -> None:
    sim = simulate_baselines(
        2, 365 * 4 + 1, np.random.default_rng(0), mean=[2.0, 8.0], seasonality=0.6
    )
    # exp(a cos) / I0(a) averages to 1 over a year: the mean parameter is the yearly mean.
    np.testing.assert_allclose(sim.expected.mean(axis=1), [2.0, 8.0], rtol=2e-3)
    monthly = pd.Series(sim.expected[1], index=sim.dates).groupby(sim.dates.month).mean()
    assert monthly.idxmax() == 1 and monthly.idxmin() == 7
    assert monthly[1] / monthly[7] == pytest.approx(np.exp(2 * 0.6), rel=0.05)


def test_weekday_pattern() -> None:
    weekly = (2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5)
    sim = simulate_baselines(
        1, 70, np.random.default_rng(0), mean=3.0, seasonality=0.0, weekly=weekly
    )
    by_day = pd.Series(sim.expected[0]).groupby(sim.dates.day_of_week).mean()
    np.testing.assert_allclose(by_day.to_numpy(), 3.0 * np.array(weekly) / np.mean(weekly))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": -1.0}, "mean must be positive"),
        ({"mean": [1.0, 2.0, 3.0]}, "one number or 2 numbers"),
        ({"weekly": (1.0, 1.0)}, "7 positive"),
        ({"dispersion": 0.0}, "dispersion"),
    ],
)
def test_baseline_arguments_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SeriesError, match=message):
        simulate_baselines(2, 10, np.random.default_rng(0), **kwargs)  # type: ignore[arg-type]


# -- outbreak shapes ---------------------------------------------------------------------


def test_profiles_by_hand() -> None:
    np.testing.assert_allclose(outbreak_profile("flat", 4), [0.25] * 4)
    np.testing.assert_allclose(outbreak_profile("linear", 4), [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(outbreak_profile("spike", 9), [1.0])


@pytest.mark.parametrize("duration", [1, 3, 7, 14])
def test_lognormal_profile_matches_sartwell_curve(duration: int) -> None:
    curve = lognorm(s=0.5)  # log-mean 0, log-sd 0.5
    edges = np.linspace(0.0, curve.ppf(0.99), duration + 1)
    want = np.diff(curve.cdf(edges)) / 0.99
    got = outbreak_profile("lognormal", duration)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert got.sum() == pytest.approx(1.0)
    if duration >= 7:  # a point-source curve: rises fast, peaks early, long tail
        assert int(np.argmax(got)) < duration / 2 and got[-1] < got.max() / 5


def test_bad_shape_and_duration() -> None:
    with pytest.raises(SeriesError, match="shape must be one of"):
        outbreak_profile("square", 3)  # type: ignore[arg-type]
    with pytest.raises(SeriesError, match="at least 1 day"):
        outbreak_profile("flat", 0)


# -- injection ---------------------------------------------------------------------------


def _windows(table: pd.DataFrame) -> list[tuple[int, int, int]]:
    """(series, start, end) of each outbreak, as plain ints."""
    columns = (table[c].astype(int).tolist() for c in ("series", "start", "end"))
    return list(zip(*columns, strict=True))


def _check_injection(
    base: np.ndarray, counts: np.ndarray, table: pd.DataFrame, truth: np.ndarray
) -> None:
    """Cases added equal the table's, only inside the windows, windows do not overlap."""
    added = counts - base
    assert (added[~truth] == 0).all()
    assert (added >= 0).all()
    for (s, a, b), cases in zip(_windows(table), table["cases"], strict=True):
        assert added[s, a : b + 1].sum() == cases
        assert truth[s, a : b + 1].all()
    assert truth.sum() == (table["end"] - table["start"] + 1).sum()  # so: no overlap


def test_injection_adds_exactly_the_reported_cases() -> None:
    rng = np.random.default_rng(5)
    base = simulate_baselines(50, 400, rng)
    counts, table, truth = inject_outbreaks(
        base.counts, rng, size=4.0, duration=7, per_series=3, start_after=100, sd=base.sd
    )
    assert list(table.columns) == list(OUTBREAK_COLUMNS) and len(table) == 150
    assert (table["cases"] >= 1).all() and (table["start"] >= 100).all()
    assert (table["end"] - table["start"] == 6).all() and (table["end"] < 400).all()
    _check_injection(base.counts, counts, table, truth)
    np.testing.assert_allclose(table["sd"], base.sd[table["series"], table["start"]])
    np.testing.assert_allclose(table["expected_cases"], 4.0 * table["sd"])
    # The input is not changed.
    assert not np.shares_memory(counts, base.counts)


def test_injection_is_reproducible() -> None:
    base = np.full((10, 200), 3.0)
    runs = [inject_outbreaks(base, np.random.default_rng(s), per_series=2) for s in (9, 9, 10)]
    np.testing.assert_array_equal(runs[0].counts, runs[1].counts)
    pd.testing.assert_frame_equal(runs[0].outbreaks, runs[1].outbreaks)
    assert not runs[0].outbreaks.equals(runs[2].outbreaks)


@given(
    n_days=st.integers(10, 120),
    per_series=st.integers(0, 4),
    duration=st.integers(1, 10),
    gap=st.integers(0, 10),
    after=st.integers(0, 30),
    shape=st.sampled_from(["flat", "linear", "lognormal", "spike"]),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_windows_fit_and_never_overlap(
    n_days: int, per_series: int, duration: int, gap: int, after: int, shape: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    base = rng.poisson(2.0, size=(6, n_days)).astype(float)
    width = 1 if shape == "spike" else duration
    fits = per_series == 0 or per_series * width + max(per_series - 1, 0) * gap <= n_days - after
    kwargs = {"per_series": per_series, "duration": duration, "min_gap": gap, "start_after": after}
    if not fits:
        with pytest.raises(SeriesError, match="do not fit"):
            inject_outbreaks(base, rng, shape=shape, **kwargs)  # type: ignore[arg-type]
        return
    counts, table, truth = inject_outbreaks(base, rng, shape=shape, **kwargs)  # type: ignore[arg-type]
    assert len(table) == 6 * per_series
    assert (table["start"] >= after).all() and (table["end"] < n_days).all()
    assert (table["end"] - table["start"] + 1 == width).all()
    for _, group in table.groupby("series"):
        starts, ends = group["start"].to_numpy(), group["end"].to_numpy()
        assert (starts[1:] - ends[:-1] - 1 >= gap).all()
    _check_injection(base, counts, table, truth)


def test_start_days_are_uniform_over_placements() -> None:
    # 2 one-day outbreaks in 4 days without gap: the 6 pairs are equally likely.
    starts = (
        inject_outbreaks(
            np.zeros((12000, 4)),
            np.random.default_rng(0),
            duration=1,
            shape="flat",
            per_series=2,
            min_gap=0,
            size=1,
            size_unit="cases",
        )
        .outbreaks.groupby("series")["start"]
        .agg(tuple)
    )
    freq = Counter(starts)
    assert set(freq) == set(itertools.combinations(range(4), 2))
    for pair in freq:
        assert freq[pair] / 12000 == pytest.approx(1 / 6, abs=0.015)


def test_size_in_standard_deviations_is_poisson_k_sd() -> None:
    base = np.full((4000, 60), 5.0)
    counts, table, _ = inject_outbreaks(
        base, np.random.default_rng(1), size=5.0, sd=2.0, shape="flat", duration=5
    )
    assert table["cases"].mean() == pytest.approx(10.0, rel=0.03)
    assert table["cases"].var() == pytest.approx(10.0, rel=0.1)
    assert counts.sum() - base.sum() == table["cases"].sum()


def test_size_in_cases_and_spike() -> None:
    base = np.ones((20, 50))
    counts, table, truth = inject_outbreaks(
        base, np.random.default_rng(2), size=12, size_unit="cases", shape="spike", duration=7
    )
    assert (table["cases"] == 12).all() and (table["start"] == table["end"]).all()
    assert (counts[truth] == 13).all() and truth.sum() == 20


def test_zero_sd_still_injects_one_case() -> None:
    counts, table, _ = inject_outbreaks(np.zeros((30, 80)), np.random.default_rng(3), size=3.0)
    assert (table["sd"] == 0).all() and (table["cases"] >= 1).all()
    assert counts.sum() == table["cases"].sum()


def test_estimated_sd_is_the_window_sample_sd() -> None:
    rng = np.random.default_rng(4)
    base = rng.poisson(6.0, size=(20, 120)).astype(float)
    base[3, 40:70] = np.nan  # missing days are left out of the estimate
    _, table, _ = inject_outbreaks(base, rng, sd_window=10, per_series=2, duration=3)
    for (s, a, _), sd in zip(_windows(table), table["sd"], strict=True):
        window = base[s, max(a - 10, 0) : a + 11]
        window = window[np.isfinite(window)]
        want = np.std(window, ddof=1) if len(window) >= 2 else 0.0
        assert sd == pytest.approx(want, rel=1e-9)


def test_missing_days_receive_no_cases() -> None:
    base = np.full((1, 30), np.nan)
    base[0, :10] = 1.0
    counts, table, _ = inject_outbreaks(
        base, np.random.default_rng(0), size=50, size_unit="cases", duration=30, shape="flat"
    )
    assert table["cases"].iloc[0] == counts[0, :10].sum() - 10
    assert np.isnan(counts[0, 10:]).all()


def test_no_outbreaks_leaves_counts_alone() -> None:
    base = np.arange(20.0).reshape(2, 10)
    counts, table, truth = inject_outbreaks(base, np.random.default_rng(0), per_series=0)
    np.testing.assert_array_equal(counts, base)
    assert table.empty and list(table.columns) == list(OUTBREAK_COLUMNS) and not truth.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0.0}, "size must be positive"),
        ({"size_unit": "percent"}, "size_unit"),
        ({"per_series": -1}, "must not be negative"),
        ({"sd": np.ones(3)}, "sd does not match"),
        ({"per_series": 5, "duration": 7}, "do not fit"),
    ],
)
def test_injection_arguments_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SeriesError, match=message):
        inject_outbreaks(np.ones((2, 40)), np.random.default_rng(0), **kwargs)  # type: ignore[arg-type]


# -- scoring -----------------------------------------------------------------------------


def _table(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["series", "start", "end"])


def test_no_outbreaks_and_no_alarms() -> None:
    none = np.zeros((3, 50), dtype=bool)
    score = score_detection(none, ~none, _table([]))
    assert np.isnan(score.sensitivity) and np.isnan(score.ppv) and np.isnan(score.median_delay_days)
    assert score.false_alarms_per_100 == 0.0 and score.outbreaks == 0
    assert score.series_days == score.background_days == 150


def test_silent_detector_misses_everything() -> None:
    none = np.zeros((2, 30), dtype=bool)
    score = score_detection(none, ~none, _table([(0, 5, 9), (1, 20, 22)]))
    assert score.sensitivity == 0.0 and score.detected == 0 and score.false_alarms_per_100 == 0.0
    assert np.isnan(score.ppv) and np.isnan(score.median_delay_days)


def test_perfect_detector() -> None:
    rng = np.random.default_rng(0)
    _, table, truth = inject_outbreaks(np.ones((40, 200)), rng, per_series=3, duration=6)
    score = score_detection(truth, np.ones_like(truth), table)
    assert score.sensitivity == 1.0 and score.ppv == 1.0 and score.median_delay_days == 0.0
    assert score.false_alarms_per_100 == 0.0 and score.outbreaks == 120


def test_hand_computed_scores() -> None:
    # Series 0: outbreak on days 10–14, first alarm day 12 (delay 2), false alarms on
    # days 3 and 30. Series 1: outbreak 0–4 missed, false alarm day 20; days 40–49 not
    # computed (an alarm there is ignored).
    alarm = np.zeros((2, 50), dtype=bool)
    alarm[0, [3, 12, 13, 30]] = True
    alarm[1, [20, 45]] = True
    computed = np.ones((2, 50), dtype=bool)
    computed[1, 40:] = False
    score = score_detection(alarm, computed, _table([(0, 10, 14), (1, 0, 4)]))
    assert (score.outbreaks, score.detected, score.alarms) == (2, 1, 5)
    assert (score.true_alarms, score.false_alarms) == (2, 3)
    assert score.sensitivity == 0.5 and score.median_delay_days == 2.0
    assert score.ppv == pytest.approx(2 / 5)
    assert score.background_days == 100 - 10 - 10
    assert score.false_alarms_per_100 == pytest.approx(100 * 3 / 80)


def test_grace_days_count_neither_way() -> None:
    alarm = np.zeros((1, 40), dtype=bool)
    alarm[0, [11, 16, 18, 30]] = True  # in window, 2 and 4 days after its end, far away
    table = _table([(0, 10, 14)])
    strict = score_detection(alarm, np.ones_like(alarm), table)
    graced = score_detection(alarm, np.ones_like(alarm), table, n_days_after=3)
    assert (strict.false_alarms, strict.background_days) == (3, 35)
    assert (graced.false_alarms, graced.background_days) == (2, 32)
    assert graced.ppv == pytest.approx(1 / 3) and graced.alarms == 4


def test_outbreak_without_computed_days_is_not_counted() -> None:
    computed = np.ones((1, 30), dtype=bool)
    computed[0, :10] = False
    score = score_detection(np.zeros_like(computed), computed, _table([(0, 2, 6), (0, 15, 19)]))
    assert score.outbreaks == 1 and score.sensitivity == 0.0


def _naive_score(
    alarm: np.ndarray, computed: np.ndarray, table: pd.DataFrame, after: int
) -> tuple[float, ...]:
    """One outbreak and one day at a time, straight from the definitions."""
    n_series, n_days = alarm.shape
    alarm = alarm & computed
    windows = _windows(table)
    window = np.zeros_like(alarm)
    for s, a, b in windows:
        window[s, a : b + 1] = True
    grace = np.zeros_like(alarm)
    for s, _, b in windows:
        for t in range(b + 1, min(b + after, n_days - 1) + 1):
            grace[s, t] = not window[s, t]
    detected, counted = 0, 0
    delays: list[int] = []
    for s, a, b in windows:
        if not computed[s, a : b + 1].any():
            continue
        counted += 1
        hits = [t for t in range(a, b + 1) if alarm[s, t]]
        if hits:
            detected += 1
            delays.append(hits[0] - a)
    fa = bg = ta = 0
    for s in range(n_series):
        for t in range(n_days):
            if computed[s, t] and not window[s, t] and not grace[s, t]:
                bg += 1
                fa += alarm[s, t]
            ta += alarm[s, t] and window[s, t]
    nan = float("nan")
    return (
        detected / counted if counted else nan,
        100 * fa / bg if bg else nan,
        float(np.median(delays)) if delays else nan,
        ta / (ta + fa) if ta + fa else nan,
    )


@given(seed=st.integers(0, 2**32 - 1), after=st.integers(0, 4), p=st.floats(0.0, 0.5))
@settings(max_examples=40, deadline=None)
def test_vectorised_scores_equal_the_definitions(seed: int, after: int, p: float) -> None:
    rng = np.random.default_rng(seed)
    _, table, _ = inject_outbreaks(
        np.ones((5, 60)), rng, per_series=2, duration=int(rng.integers(1, 8)), min_gap=2
    )
    alarm = rng.random((5, 60)) < p
    computed = rng.random((5, 60)) < 0.8
    got = score_detection(alarm, computed, table, n_days_after=after)
    want = _naive_score(alarm, computed, table, after)
    have = (got.sensitivity, got.false_alarms_per_100, got.median_delay_days, got.ppv)
    np.testing.assert_allclose(have, want, equal_nan=True)


def test_score_arguments_are_checked() -> None:
    ok = np.zeros((2, 10), dtype=bool)
    with pytest.raises(SeriesError, match="differ in shape"):
        score_detection(ok, np.zeros((2, 9), dtype=bool), _table([]))
    with pytest.raises(SeriesError, match="outside"):
        score_detection(ok, ok, _table([(2, 0, 1)]))
    with pytest.raises(SeriesError, match="n_days_after"):
        score_detection(ok, ok, _table([]), n_days_after=-1)
