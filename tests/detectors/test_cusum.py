"""CUSUM: parity with R surveillance::cusum, hand-computed cases and invariants.

Goldens: tests/assets/detectors/cusum, written by tests/detectors/reference/ears_cusum.R.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.cusum import detect_cusum
from detectors.registry import get_method
from detectors.result import DetectorResult
from detectors.series import CountSeries, SeriesError, make_series

GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "detectors" / "cusum"
CASES: list[dict[str, Any]] = [
    {str(k): v for k, v in case.items()}
    for case in pd.read_csv(GOLDEN / "settings.csv", keep_default_na=False).to_dict("records")
]
# Documented deviation: R turns everything after a missing count into NA; we carry the sum.
SERIES_WITH_MISSING = "with_missing"


def load_counts(dataset: str) -> tuple[CountSeries, list[str]]:
    frame = pd.read_csv(GOLDEN / f"{dataset}.counts.csv", index_col="date")
    return make_series(frame.to_numpy(float).T, pd.to_datetime(frame.index)), list(frame.columns)


def case_params(case: dict[str, Any]) -> dict[str, Any]:
    m = str(case["m"])
    return {
        "k": float(case["k"]),
        "h": float(case["h"]),
        "m": None if m == "" else m if m == "glm" else float(m),
        "trans": str(case["trans"]),
        "alpha": float(case["alpha"]),
        "start": int(case["start"]),
    }


def comparable_series(case: dict[str, Any], series: CountSeries, names: list[str]) -> np.ndarray:
    """Series where R's values are defined: ours must be computed there, and only there.

    Elsewhere (documented deviations) ours is not computed: training counts with a
    non-positive mean (R divides by sqrt(0)) and glm fits without a finite maximum.
    """
    params = case_params(case)
    start = int(params["start"])
    defined = np.array([name != SERIES_WITH_MISSING for name in names])
    if params["trans"] != "none" and params["m"] is None:
        defined &= np.nansum(series.counts[:, :start], axis=1) > 0
    if params["m"] == "glm":
        fit = pd.read_csv(GOLDEN / f"{case['dataset']}.glm_fit.csv")
        defined &= (fit["converged"] & (fit["training_total"] > 0)).to_numpy()
    return defined


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['dataset']}-{c['setting']}")
def test_matches_r_cusum(case: dict[str, Any]) -> None:
    series, names = load_counts(str(case["dataset"]))
    result = detect_cusum(series, **case_params(case))
    stem = f"{case['dataset']}.{case['setting']}"
    r_ub = pd.read_csv(GOLDEN / f"{stem}.upperbound.csv").to_numpy(float).T
    r_alarm = pd.read_csv(GOLDEN / f"{stem}.alarm.csv").to_numpy(float).T
    rows = comparable_series(case, series, names)
    assert rows.sum() >= 0.75 * len(rows)
    # computed exactly where R has an alarm value (R's upper bound is 0, not NA, elsewhere)
    np.testing.assert_array_equal(result.computed[rows], ~np.isnan(r_alarm[rows]))
    both = result.computed & rows[:, None]
    ours, theirs = result.upperbound[both], r_ub[both]
    relative = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)
    assert relative.max() <= 1e-6, f"max relative error {relative.max():.2e}"
    agreement = np.mean(result.alarm[both] == (r_alarm[both] == 1))
    assert agreement >= 0.995, f"alarms agree on {agreement:.4%}"
    deviations = ~rows & np.array([name != SERIES_WITH_MISSING for name in names])
    assert not result.computed[deviations].any()


def test_goldens_cover_every_transformation_and_m() -> None:
    assert "surveillance 1.20.3" in (GOLDEN / "versions.txt").read_text()
    assert {c["trans"] for c in CASES} == {
        "standard",
        "rossi",
        "anscombe",
        "anscombe2nd",
        "pearsonNegBin",
        "none",
    }
    assert {c["m"] for c in CASES} == {"", "2.5", "glm"}
    alarms = sum(
        int(
            np.nansum(
                pd.read_csv(GOLDEN / f"{c['dataset']}.{c['setting']}.alarm.csv").to_numpy(float)
            )
        )
        for c in CASES
    )
    assert alarms > 1000


def test_documented_deviations_on_the_goldens() -> None:
    series, names = load_counts("sim")
    result = detect_cusum(series, start=365)
    row = names.index(SERIES_WITH_MISSING)
    missing = np.isnan(series.counts[row])
    missing[:365] = False
    assert missing.any()
    # R: NA from the first missing count on. Ours: only the missing days are not computed.
    np.testing.assert_array_equal(result.computed[row, 365:], ~missing[365:])
    measles, names = load_counts("measlesDE")
    saarland = names.index("Saarland")
    assert np.nansum(measles.counts[saarland, :52]) == 0
    assert not detect_cusum(measles, start=52, trans="anscombe2nd").computed[saarland].any()
    assert detect_cusum(measles, start=52, trans="none").computed[saarland, 52:].all()


# ---------------------------------------------------------------- hand-computed cases


def test_standard_cusum_by_hand() -> None:
    # m = 4 from the training counts; z = (y - 4) / 2 = 0, 3, 4, 0
    result = detect_cusum(make_series([4.0, 4, 4, 4, 4, 10, 12, 4]), start=4)
    sums = [0.0, 3 - 1.04, 3 - 1.04 + 4 - 1.04, 3 - 1.04 + 4 - 1.04 - 1.04]
    np.testing.assert_allclose(result.score[4:], sums, rtol=1e-14, atol=1e-15)
    previous = [0.0, *sums[:-1]]
    bounds = [math.ceil(2 * (2.26 + 1.04 - c) + 4) for c in previous]
    np.testing.assert_array_equal(result.upperbound[4:], bounds)
    assert bounds == [11, 11, 7, 1]
    np.testing.assert_array_equal(result.alarm[4:], [False, False, True, True])
    np.testing.assert_array_equal(result.expected[4:], 4.0)
    assert not result.computed[:4].any()
    assert result.params["start"] == 4


def test_rossi_and_pearson_transformations_by_hand() -> None:
    counts = [9.0, 9, 9, 9, 16]
    rossi = detect_cusum(make_series(counts), start=4, trans="rossi", k=0.0)
    assert rossi.score[4] == pytest.approx((16 - 27 + 2 * 12) / (2 * 3))
    pearson = detect_cusum(make_series(counts), start=4, trans="pearsonNegBin", alpha=0.5, k=0.0)
    assert pearson.score[4] == pytest.approx(7 / math.sqrt(9 + 0.5 * 81))
    # the bound is the count at which the sum reaches h
    bound = math.sqrt(9 + 0.5 * 81) * 2.26 + 9
    assert pearson.upperbound[4] == pytest.approx(bound)


def test_glm_expectation_matches_statsmodels() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(1, 900)
    counts = rng.poisson(6 * np.exp(0.5 * np.cos(2 * np.pi * (t - 40) / 365))).astype(float)
    series = make_series(counts, pd.date_range("2021-01-01", periods=len(counts)))
    result = detect_cusum(series, m="glm", start=730)
    train = 1 + np.arange(730)  # R's t: day of year of the first date (1) + index
    design = np.column_stack(
        [np.ones(730), np.cos(2 * np.pi / 365 * train), np.sin(2 * np.pi / 365 * train)]
    )
    fit = sm.GLM(counts[:730], design, family=sm.families.Poisson()).fit(tol=1e-14)
    new = 1 + np.arange(730, len(counts))
    prediction = fit.predict(
        np.column_stack(
            [np.ones(len(new)), np.cos(2 * np.pi / 365 * new), np.sin(2 * np.pi / 365 * new)]
        )
    )
    np.testing.assert_allclose(result.expected[730:], prediction, rtol=1e-9)


def test_glm_without_a_finite_fit_is_not_computed() -> None:
    counts = np.zeros((2, 120))
    counts[1, 30] = 1  # one positive count: the fitted rate at it tends to 1, the rest to 0
    counts[:, 100:] = 3
    result = detect_cusum(make_series(counts), m="glm", start=100)
    assert not result.computed.any()


def test_a_missing_count_carries_the_sum() -> None:
    counts = [5.0, 5, 5, 5, 5, 11, 13, 4, 12, 6, 9]
    with_gap = [*counts[:7], np.nan, *counts[7:]]
    full = detect_cusum(make_series(counts), start=5)
    gap = detect_cusum(make_series(with_gap), start=5)
    assert not gap.computed[7] and not gap.alarm[7]
    np.testing.assert_array_equal(gap.score[8:], full.score[7:])
    np.testing.assert_array_equal(gap.upperbound[8:], full.upperbound[7:])


# ---------------------------------------------------------------- invariants

transformations = st.sampled_from(["standard", "rossi", "anscombe", "anscombe2nd", "pearsonNegBin"])
params = st.fixed_dictionaries(
    {
        "trans": transformations,
        "k": st.sampled_from([0.5, 1.04, 2.0]),
        "h": st.sampled_from([1.0, 2.26, 5.0]),
        "m": st.sampled_from([None, None, 3.5, "glm"]),
        "start": st.integers(5, 25),
    }
)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 40), st.integers(30, 80), params)
def test_a_constant_series_never_alarms(value: int, n: int, kw: dict) -> None:
    kw = {**kw, "m": None if kw["m"] == 3.5 else kw["m"]}  # a given m differs from the level
    result = detect_cusum(make_series(np.full(n, float(value))), **kw)
    assert not result.alarm.any()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 25), min_size=30, max_size=80), params)
def test_alarm_iff_the_sum_reaches_h(counts: list[int], kw: dict) -> None:
    series = make_series(np.array(counts, dtype=float))
    result = detect_cusum(series, **kw)
    c = result.computed
    np.testing.assert_array_equal(result.alarm[c], result.score[c] >= kw["h"])
    assert not result.alarm[~c].any()
    if kw["trans"] == "standard":
        # the bound is the smallest count that signals (away from rounding ties)
        clear = c & (np.abs(result.score - kw["h"]) > 1e-9)
        np.testing.assert_array_equal(
            result.alarm[clear], series.counts[0][clear] >= result.upperbound[clear]
        )


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(30, 80), params, st.integers(0, 2**31))
def test_many_series_at_once_equal_one_at_a_time(k: int, n: int, kw: dict, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(3, 0.4, size=(k, n)).astype(float)
    counts[rng.random((k, n)) < 0.05] = np.nan
    together = detect_cusum(make_series(counts), **kw)
    for i in range(k):
        alone = detect_cusum(make_series(counts[i]), **kw)
        for field in ("expected", "upperbound", "score", "alarm", "computed"):
            np.testing.assert_array_equal(getattr(alone, field), getattr(together, field)[i])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 25), min_size=30, max_size=80),
    params,
    st.integers(0, 79),
    st.integers(0, 2**31),
)
def test_results_do_not_look_ahead(counts: list[int], kw: dict, cut: int, seed: int) -> None:
    cut = min(cut, len(counts) - 1)
    changed = np.array(counts, dtype=float)
    changed[cut + 1 :] = np.random.default_rng(seed).integers(0, 100, len(counts) - cut - 1)
    before = detect_cusum(make_series(counts), **kw)
    after = detect_cusum(make_series(changed), **kw)
    for field in ("upperbound", "score", "alarm", "computed"):
        np.testing.assert_array_equal(
            getattr(before, field)[: cut + 1], getattr(after, field)[: cut + 1]
        )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 25), min_size=30, max_size=80), params, st.data())
def test_evaluating_some_points_gives_the_same_values(
    counts: list[int], kw: dict, data: st.DataObject
) -> None:
    series = make_series(np.array([counts, counts[::-1]], dtype=float))
    everything = detect_cusum(series, **kw)
    at = data.draw(st.lists(st.integers(0, len(counts) - 1), min_size=1, max_size=5, unique=True))
    some = detect_cusum(series, at=at, **kw)
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[at] = True
    np.testing.assert_array_equal(some.computed, everything.computed & chosen)
    for field in ("expected", "upperbound", "score", "alarm"):
        np.testing.assert_array_equal(
            getattr(some, field)[:, at], getattr(everything, field)[:, at]
        )


# ---------------------------------------------------------------- interface


def test_start_defaults_to_one_year_and_counts_from_the_end_when_negative() -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(4, 400).astype(float)
    default = detect_cusum(make_series(counts))
    assert default.params["start"] == 365 and np.flatnonzero(default.computed)[0] == 365
    tail = detect_cusum(make_series(counts), start=-30)
    assert tail.params["start"] == 370
    np.testing.assert_array_equal(tail.score, detect_cusum(make_series(counts), start=370).score)
    weekly = detect_cusum(
        make_series(counts[:60], pd.date_range("2024-01-01", periods=60, freq="7D"))
    )
    assert weekly.params["start"] == 52
    empty = detect_cusum(make_series(counts[:100]))
    assert not empty.computed.any()


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"h": 0.0}, "h must"),
        ({"k": float("inf")}, "k must"),
        ({"trans": "log"}, "trans must"),
        ({"m": -1.0}, "m must"),
        ({"m": "mean"}, "m must"),
        ({"alpha": -0.1}, "alpha must"),
        ({"start": 0}, "start must"),
        ({"start": 2, "m": "glm"}, "start must"),
        ({"start": -40}, "start must"),
        ({"start": 2.5}, "start must"),
    ],
)
def test_bad_parameters_are_refused_by_name(kw: dict, name: str) -> None:
    with pytest.raises(SeriesError, match=name):
        detect_cusum(make_series(np.arange(30.0)), **kw)


def test_registered_with_r_defaults_and_command_line_values() -> None:
    method = get_method("cusum")
    assert not method.sparse
    assert dict(method.defaults) == {
        "k": 1.04,
        "h": 2.26,
        "m": None,
        "trans": "standard",
        "alpha": 0.1,
        "start": None,
    }
    resolved = method.resolve({"m": "glm", "start": "-30", "trans": "rossi", "h": "3"})
    assert resolved == {"m": "glm", "start": -30, "trans": "rossi", "h": 3.0}
    assert method.resolve({"m": "2.5"})["m"] == 2.5
    result: DetectorResult = method.run(
        make_series(np.arange(1.0, 41.0)), {"start": "20", "m": "none"}
    )
    assert result.method == "cusum"
    assert dict(result.params) == {
        "k": 1.04,
        "h": 2.26,
        "m": None,
        "trans": "standard",
        "alpha": 0.1,
        "start": 20,
    }
