"""The space-time scan engine: hand-computed cases, SaTScan's rules, the brute-force
reference on random inputs, the Monte Carlo machinery, null calibration and power."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geo.scan_montecarlo as montecarlo
from geo.scan import ScanInputError, ScanResult, scan_space_time
from geo.scan_stats import expectation, window_counts, zone_counts
from geo.scan_zones import build_zones, locations_from_xy

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "scan"


def _load_brute_force() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scan_brute_force", ASSETS / "brute_force.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


brute = _load_brute_force()


def _on_a_line(xs: list[float]) -> np.ndarray:
    return np.column_stack([np.asarray(xs, dtype=float), np.zeros(len(xs))])


def _scan(cases: list[list[int]], xs: list[float], **kw: object) -> ScanResult:
    kw.setdefault("reps", 0)
    kw.setdefault("rng", np.random.default_rng(0))
    return scan_space_time(np.asarray(cases), xy_km=_on_a_line(xs), **kw)  # type: ignore[arg-type]


# -- hand-computed cases -----------------------------------------------------------------


def test_permutation_hand_computed() -> None:
    # N = 10; day totals 4, 3, 3; at most 5 cases per circle, so every circle is one
    # location (the nearest neighbour always brings the total to 7).
    result = _scan([[2, 1, 0], [1, 0, 3], [1, 2, 0]], [0, 1, 2], max_days=2)
    first, second = result.clusters
    assert first.locations == (1,) and (first.start_day, first.end_day) == (2, 2)
    assert first.observed == 3
    assert first.expected == pytest.approx(4 * 3 / 10)
    assert first.llr == pytest.approx(3 * math.log(3 / 1.2) + 7 * math.log(7 / 8.8), rel=1e-12)
    assert first.relative_risk == pytest.approx((3 / 1.2) / (7 / 8.8), rel=1e-12)
    assert first.radius_km == 0.0 and first.centre == 1
    # location 2: 2 cases in the last two days against 3 · 6 / 10 expected
    assert second.locations == (2,) and second.start_day == 1
    assert (second.observed, second.expected) == (2, pytest.approx(1.8))
    assert second.llr == pytest.approx(2 * math.log(2 / 1.8) + 8 * math.log(8 / 8.2), rel=1e-12)
    assert math.isnan(first.p_value) and math.isnan(first.recurrence_interval_days)


def test_poisson_hand_computed() -> None:
    # N = 10 over 2 days; μ = 10 · population share · days / 2. Circles hold at most
    # 500 of the 1000 residents: location 2 (700) is never in one.
    result = _scan(
        [[0, 3], [1, 0], [3, 3]],
        [0, 5, 10],
        model="poisson",
        population=[100, 200, 700],
        max_days=2,
    )
    (only,) = result.clusters  # {1, 0} is as good as {0, 1} but overlaps it
    assert only.locations == (0,) and only.start_day == 1
    assert only.observed == 3 and only.expected == pytest.approx(10 * 0.1 * 1 / 2)
    assert only.llr == pytest.approx(3 * math.log(3 / 0.5) + 7 * math.log(7 / 9.5), rel=1e-12)
    assert only.relative_risk == pytest.approx((3 / 0.5) / (7 / 9.5), rel=1e-12)


def test_secondary_cluster_must_not_share_a_location() -> None:
    # N = 27, 12 cases on the last day. Centres 2 and 3 have better cylinders (LLR 1.44 and
    # 1.37) than location 4, but they overlap the most likely cluster {0, 1, 2}.
    cases = [[0, 3], [0, 3], [0, 2], [3, 1], [0, 3], [6, 0], [6, 0]]
    xs = [0, 1, 2, 3, 20, 30, 40]
    result = _scan(cases, xs, max_days=1)
    assert [c.locations for c in result.clusters] == [(0, 1, 2), (4,)]
    mlc, second = result.clusters
    assert mlc.expected == pytest.approx(8 * 12 / 27)
    assert mlc.llr == pytest.approx(
        8 * math.log(8 / (96 / 27)) + 19 * math.log(19 / (27 - 96 / 27))
    )
    assert second.expected == pytest.approx(3 * 12 / 27)
    candidates = brute.best_per_centre(cases, _on_a_line(xs).tolist(), max_days=1)
    overlapping = [c for c in candidates if c.llr > second.llr and set(c.members) & {0, 1, 2}]
    assert {c.centre for c in overlapping} == {0, 1, 2, 3}


# -- SaTScan's rules: ties, limits --------------------------------------------------------


def test_equal_llr_keeps_the_smaller_circle() -> None:
    # location 1 has no case at all, so {0, 1} has exactly the counts and expectation of {0}
    result = _scan([[0, 0, 0, 3], [0, 0, 0, 0], [2, 2, 1, 0], [2, 1, 2, 0]], [0, 1, 5, 6])
    assert result.clusters[0].locations == (0,)
    assert result.clusters[0].radius_km == 0.0


def test_equal_llr_keeps_the_shorter_window() -> None:
    # nobody fell ill on day 2, so the windows {3} and {2, 3} are the same cylinder
    result = _scan([[1, 0, 0, 3], [2, 2, 0, 0], [2, 1, 0, 0]], [0, 5, 10])
    assert result.clusters[0].locations == (0,)
    assert result.clusters[0].start_day == 3


def test_ranking_ties_go_to_the_lower_centre_index() -> None:
    twin = [[2, 2, 0], [0, 0, 3], [2, 1, 0], [0, 0, 3]]  # locations 1 and 3 alike, far apart
    for order in ([0, 1, 2, 3], [0, 3, 2, 1]):
        result = _scan([twin[i] for i in order], [[0, 10, 20, 30][i] for i in order])
        first, second = result.clusters[:2]
        assert first.llr == second.llr
        assert (first.centre, second.centre) == (1, 3)


def test_circle_stops_at_the_first_location_over_the_size_limit() -> None:
    # At most 13 of the 26 cases per circle. From location 0 the next location (1) has 12
    # cases and ends the circle; skipping it to take location 2 (2 cases, same days as 0)
    # would make {0, 2} the most likely cluster.
    cases = [[0, 0, 0, 0, 2], [3, 3, 3, 3, 0], [0, 0, 0, 0, 2], [2, 1, 1, 1, 0], [1, 2, 1, 1, 0]]
    result = _scan(cases, [0, 1, 2, 10, 11])
    assert [c.locations for c in result.clusters[:2]] == [(0,), (2,)]
    assert result.clusters[0].llr == result.clusters[1].llr
    assert not any({0, 2} <= set(c.locations) for c in result.clusters)


def test_radius_cap_is_inclusive() -> None:
    cases = [[0, 0, 2], [0, 0, 2], [1, 1, 0], [3, 3, 0], [3, 2, 0]]
    xs = [0, 1, 2, 20, 21]
    at_cap = _scan(cases, xs, max_radius_km=1.0).clusters[0]
    assert at_cap.locations == (0, 1) and at_cap.radius_km == 1.0
    assert at_cap.expected == pytest.approx(4 * 4 / 17)
    below = _scan(cases, xs, max_radius_km=0.999).clusters[0]
    assert below.locations == (0,)


def test_distance_ties_enter_by_smaller_x_then_y() -> None:
    # the centre (0, 0) and four neighbours at distance 1, listed in no useful order
    xy = np.array([[1, 0], [0, 1], [0, 0], [-1, 0], [0, -1]], dtype=float)
    zones = build_zones(locations_from_xy(xy[:, 0], xy[:, 1]), np.ones(5), max_size=5)
    members = zones.members[zones.starts[2] : zones.starts[3]]
    assert [tuple(xy[m]) for m in members] == [(0, 0), (-1, 0), (0, -1), (0, 1), (1, 0)]
    shuffled = np.random.default_rng(3).permutation(5)
    again = build_zones(locations_from_xy(xy[shuffled, 0], xy[shuffled, 1]), np.ones(5), max_size=5)
    centre = int(np.flatnonzero(shuffled == 2)[0])
    members = again.members[again.starts[centre] : again.starts[centre + 1]]
    assert [tuple(xy[shuffled][m]) for m in members] == [(0, 0), (-1, 0), (0, -1), (0, 1), (1, 0)]


def test_lat_lon_uses_chords_and_reports_arcs() -> None:
    # two points 0.03° of latitude apart: arc = 6367 km · 0.03 · π/180 (≈ 3.3337 km)
    arc = 6367.0 * math.radians(0.03)
    chord = 2 * 6367.0 * math.sin(math.radians(0.03) / 2)
    cases = np.array([[0, 0, 2], [0, 0, 2], [3, 2, 0], [2, 3, 0]])
    lat_lon = [[40.0, -74.0], [40.03, -74.0], [41.0, -74.0], [42.0, -74.0]]
    found = scan_space_time(
        cases, lat_lon=lat_lon, reps=0, rng=np.random.default_rng(0), max_radius_km=chord + 1e-9
    )
    assert found.clusters[0].locations == (0, 1)
    assert found.clusters[0].radius_km == pytest.approx(arc, rel=1e-9)
    # a cap between chord and arc excludes the neighbour only if membership used arcs
    assert arc - chord > 1e-9
    cut = scan_space_time(
        cases, lat_lon=lat_lon, reps=0, rng=np.random.default_rng(0), max_radius_km=chord - 1e-9
    )
    assert cut.clusters[0].locations == (0,)


# -- the brute-force reference on random inputs --------------------------------------------


@st.composite
def _analyses(draw: st.DrawFn) -> dict[str, object]:
    n_loc = draw(st.integers(1, 7))
    n_days = draw(st.integers(1, 8))
    cases = draw(
        st.lists(
            st.lists(st.integers(0, 3), min_size=n_days, max_size=n_days),
            min_size=n_loc,
            max_size=n_loc,
        )
    )
    # a small integer grid: many exact distance ties, and coinciding locations
    xy = draw(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=n_loc, max_size=n_loc)
    )
    model = draw(st.sampled_from(["permutation", "poisson"]))
    population = draw(st.lists(st.integers(1, 50), min_size=n_loc, max_size=n_loc))
    return {
        "cases": cases,
        "xy": [(float(a), float(b)) for a, b in xy],
        "model": model,
        "population": population if model == "poisson" else None,
        "max_days": draw(st.integers(1, n_days + 2)),
        "max_radius": draw(st.sampled_from([None, 0.5, 1.0, 1.5, 2.0, 3.0])),
        "max_size_pct": draw(st.sampled_from([10.0, 25.0, 33.3, 50.0])),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_analyses())
def test_engine_equals_brute_force(analysis: dict[str, object]) -> None:
    cases = analysis["cases"]
    if sum(map(sum, cases)) == 0:  # type: ignore[arg-type]
        with pytest.raises(ScanInputError, match="no cases"):
            scan_space_time(np.asarray(cases), xy_km=analysis["xy"], rng=np.random.default_rng(0))  # type: ignore[arg-type]
        return
    result = scan_space_time(
        np.asarray(cases),
        xy_km=analysis["xy"],  # type: ignore[arg-type]
        model=analysis["model"],  # type: ignore[arg-type]
        population=analysis["population"],  # type: ignore[arg-type]
        max_days=analysis["max_days"],  # type: ignore[arg-type]
        max_radius_km=analysis["max_radius"],  # type: ignore[arg-type]
        max_size_pct=analysis["max_size_pct"],  # type: ignore[arg-type]
        reps=0,
        rng=np.random.default_rng(0),
    )
    reference = brute.brute_force_scan(
        cases,
        analysis["xy"],
        model=analysis["model"],
        population=analysis["population"],
        max_days=analysis["max_days"],
        max_radius=analysis["max_radius"],
        max_size_pct=analysis["max_size_pct"],
    )
    assert len(result.clusters) == len(reference)
    n_days = len(cases[0])  # type: ignore[index]
    for got, ref in zip(result.clusters, reference, strict=True):
        assert (got.centre, got.locations) == (ref.centre, tuple(sorted(ref.members)))
        assert got.start_day == n_days - ref.days and got.end_day == n_days - 1
        assert got.observed == ref.observed
        assert got.expected == pytest.approx(ref.expected, rel=1e-12)
        assert got.llr == pytest.approx(ref.llr, rel=1e-10, abs=1e-12)
        radius = max(math.dist(analysis["xy"][ref.centre], analysis["xy"][m]) for m in ref.members)  # type: ignore[index]
        assert got.radius_km == pytest.approx(radius)


@settings(max_examples=60, deadline=None)
@given(_analyses(), st.integers(0, 2**32 - 1))
def test_replicate_maxima_equal_brute_force_on_the_same_tables(
    analysis: dict[str, object], seed: int
) -> None:
    cases = np.asarray(analysis["cases"])
    if cases.sum() == 0:
        return
    tables: list[np.ndarray] = []
    original = montecarlo.simulate_window_counts

    def recording(*args: object, **kw: object) -> np.ndarray:
        out = original(*args, **kw)  # type: ignore[arg-type]
        tables.append(out)
        return out

    montecarlo.simulate_window_counts = recording  # type: ignore[assignment]
    try:
        result = scan_space_time(
            cases,
            xy_km=analysis["xy"],  # type: ignore[arg-type]
            model=analysis["model"],  # type: ignore[arg-type]
            population=analysis["population"],  # type: ignore[arg-type]
            max_days=analysis["max_days"],  # type: ignore[arg-type]
            max_size_pct=analysis["max_size_pct"],  # type: ignore[arg-type]
            reps=7,
            rng=np.random.default_rng(seed),
            workers=1,
        )
    finally:
        montecarlo.simulate_window_counts = original  # type: ignore[assignment]
    if not tables:  # no candidate circle at all: nothing to simulate
        assert not result.replicate_maxima.any()
        return
    windows = np.concatenate(tables)  # (reps, W, n): cases per location in each window
    n_days = cases.shape[1]
    for rep, table in enumerate(windows):
        # a daily table with those window counts: the LLR depends on nothing else
        daily = np.zeros_like(cases)
        daily[:, n_days - 1] = table[0]
        for w in range(1, table.shape[0]):
            daily[:, n_days - 1 - w] = table[w] - table[w - 1]
        refs = brute.best_per_centre(
            daily.tolist(),
            analysis["xy"],
            model=analysis["model"],
            population=analysis["population"],
            max_days=analysis["max_days"],
            max_size_pct=analysis["max_size_pct"],
            expected_from=cases.tolist(),
        )
        best = max((r.llr for r in refs), default=0.0)
        assert result.replicate_maxima[rep] == pytest.approx(best, rel=1e-9, abs=1e-9)


# -- Monte Carlo ---------------------------------------------------------------------------


def test_replicate_maxima_equal_to_the_observed_count_as_exceeding() -> None:
    # Six cases, two per location; both cases of the last day are at location 0; windows
    # of one day. In a replicate the two last-day cases fall on one location with
    # probability 3/15 = 0.2, giving exactly the observed LLR; otherwise no circle has 2
    # cases (at most 3 of the 6 cases fit in one). Counting ties as "≥" gives p ≈ 0.2,
    # counting them as "<" would give 0.001.
    cases = [[0, 0, 2], [2, 0, 0], [0, 2, 0]]
    result = _scan(cases, [0, 10, 20], max_days=1, reps=999, rng=np.random.default_rng(11))
    (mlc,) = result.clusters
    maxima = result.replicate_maxima
    tied = maxima[maxima > 0]
    assert np.unique(tied).size == 1 and tied[0] == pytest.approx(mlc.llr, rel=1e-12)
    assert mlc.p_value == (1 + tied.size) / 1000
    assert 0.15 < mlc.p_value < 0.25


def test_p_value_and_recurrence_interval_from_the_maxima() -> None:
    rng = np.random.default_rng(5)
    cases = rng.poisson(1.0, (12, 10))
    cases[3, -2:] += 4
    xy = rng.uniform(0, 10, (12, 2))
    result = scan_space_time(cases, xy_km=xy, reps=199, rng=np.random.default_rng(1))
    assert result.replicate_maxima.shape == (199,)
    for cluster in result.clusters:
        exceed = int(np.count_nonzero(result.replicate_maxima >= cluster.llr - 1e-9))
        assert cluster.p_value == (1 + exceed) / 200
        assert cluster.recurrence_interval_days == pytest.approx(200 / (1 + exceed))
        assert cluster.p_value <= 0.999 and cluster.llr >= 0.001


def test_permutation_replicates_keep_both_margins() -> None:
    rng = np.random.default_rng(2)
    cases = rng.poisson(0.8, (9, 12))
    cases[0, 0] += 1
    tables = montecarlo.simulate_window_counts("permutation", cases, 5, rng.spawn(4000))
    daily = np.diff(tables, axis=1, prepend=0)  # (reps, 5, n): the last 5 days
    assert (daily >= 0).all()
    last_days = cases[:, ::-1][:, :5].sum(axis=0)
    assert (daily.sum(axis=2) == last_days).all()  # each day keeps its cases
    assert (tables[:, -1, :] <= cases.sum(axis=1)).all()  # a location never gains cases
    # and on average each location gets its share of each day: n_l · n_d / N
    expected = np.outer(cases.sum(axis=1), last_days).T / cases.sum()
    assert np.abs(daily.mean(axis=0) - expected).max() < 0.05


def test_poisson_replicates_follow_population() -> None:
    rng = np.random.default_rng(4)
    cases = rng.poisson(2.0, (6, 10))
    pop = np.array([100.0, 200, 300, 400, 500, 500])
    tables = montecarlo.simulate_window_counts("poisson", cases, 3, rng.spawn(4000), pop)
    mean = tables.mean(axis=0)  # (3, n)
    expected = cases.sum() * np.outer(np.arange(1, 4) / 10, pop / pop.sum())
    assert np.abs(mean - expected).max() < 0.08


@pytest.mark.parametrize("model", ["permutation", "poisson"])
def test_replicates_depend_on_the_seed_only(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    cases = rng.poisson(0.5, (40, 14))
    xy = rng.uniform(0, 20, (40, 2))
    pop = rng.uniform(100, 1000, 40)

    def run(workers: int, seed: int = 3) -> np.ndarray:
        return scan_space_time(
            cases, xy_km=xy, model=model, population=pop, reps=99,  # type: ignore[arg-type]
            rng=np.random.default_rng(seed), workers=workers,
        ).replicate_maxima  # fmt: skip

    first = run(1)
    np.testing.assert_array_equal(run(2), first)
    monkeypatch.setattr(montecarlo, "BATCH_CELLS", 5_000)  # many more, smaller batches
    np.testing.assert_array_equal(run(2), first)
    assert first.std() > 0 and not np.array_equal(run(1, seed=4), first)


def test_fast_llr_agrees_with_the_reported_llr() -> None:
    rng = np.random.default_rng(6)
    cases = rng.poisson(3.0, (30, 20))
    xy = rng.uniform(0, 20, (30, 2))
    zones = build_zones(
        locations_from_xy(xy[:, 0], xy[:, 1]), cases.sum(axis=1), max_size=cases.sum() / 2
    )
    expect = expectation("permutation", cases, zones, 7)
    counts = zone_counts(window_counts(cases, 7), zones)
    exact, fast = expect.llr(counts), expect.llr_fast(counts)
    assert (exact > 0).sum() > 100
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-9)
    assert ((fast > 0) == (exact > 0)).all()


# -- input checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cases": [[1, -1], [0, 2]]}, "negative"),
        ({"cases": [[1, 0.5], [0, 2]]}, "whole numbers"),
        ({"cases": [[0, 0], [0, 0]]}, "no cases"),
        ({"cases": [1, 2]}, "locations × days"),
        ({"xy_km": [[0, 0]]}, "shape"),
        ({"lat_lon": [[40, -74], [40, -73]]}, "exactly one"),
        ({"model": "bernoulli"}, "model"),
        ({"model": "poisson"}, "population"),
        ({"model": "poisson", "population": [0, 10]}, "zero population"),
        ({"model": "poisson", "population": [1, -1]}, "non-negative"),
        ({"max_days": 0}, "max_days"),
        ({"max_size_pct": 60}, "max_size_pct"),
        ({"max_radius_km": 0}, "max_radius_km"),
        ({"reps": -1}, "reps"),
        ({"location_ids": ["a", "a"]}, "distinct"),
    ],
)
def test_bad_input_is_named(change: dict[str, object], message: str) -> None:
    kw: dict[str, object] = {"cases": [[1, 0], [0, 2]], "xy_km": [[0, 0], [1, 0]], "reps": 0}
    kw.update(change)
    with pytest.raises(ScanInputError, match=message):
        scan_space_time(rng=np.random.default_rng(0), **kw)  # type: ignore[arg-type]


def test_max_days_longer_than_the_study_period_is_capped() -> None:
    cases = [[0, 3, 1], [2, 0, 0], [2, 1, 0]]
    long = _scan(cases, [0, 5, 10], max_days=30, reps=19, rng=np.random.default_rng(1))
    same = _scan(cases, [0, 5, 10], max_days=3, reps=19, rng=np.random.default_rng(1))
    assert long.clusters == same.clusters and long.clusters


# -- null calibration and power --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model", ["permutation", "poisson"])
def test_null_calibration_share_of_p_below_5_percent(model: str) -> None:
    # 1,000 analyses of data with no cluster: 30 locations in a 10 km square, 14 days, 120
    # cases, each case's location drawn by population and its day uniformly, independently.
    # With 199 replicates p < 0.05 means p ≤ 0.045: a calibrated test rejects at most 4.5 %
    # (ties make it conservative). 1,000 runs rather than 200: the binomial standard error
    # of the share is then 0.7 % instead of 1.5 %, so 3–7 % is ±2.9 SE, not ±1.3 SE, and
    # the assertion fails for a miscalibrated test rather than for an unlucky seed.
    rng = np.random.default_rng(2024)
    xy = rng.uniform(0, 10, (30, 2))
    pop = rng.integers(1_000, 10_000, 30).astype(float)
    cell = np.repeat(pop / pop.sum() / 14, 14)
    p_values = np.ones(1000)
    for run in range(p_values.size):
        cases = rng.multinomial(120, cell).reshape(30, 14)
        result = scan_space_time(
            cases, xy_km=xy, model=model, population=pop, reps=199,  # type: ignore[arg-type]
            rng=np.random.default_rng(run),
        )  # fmt: skip
        if result.clusters:
            p_values[run] = result.clusters[0].p_value
    assert 0.03 <= (p_values < 0.05).mean() <= 0.07  # measured: 4.2 % and 5.0 %
    assert 0.44 <= (p_values <= 0.5).mean() <= 0.55  # calibrated over the whole range
    # The criterion on 200 runs, here the first 200 (measured: 5.5 % and 4.0 %).
    # Its ±1.3 SE margin fails about one seed in five for a calibrated test: if a change
    # of the random streams makes it fail while the 1,000-run check passes, it is luck.
    assert 0.03 <= (p_values[:200] < 0.05).mean() <= 0.07


@pytest.fixture(scope="module")
def city() -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
    from geo.areas import build_city_area_set

    area = build_city_area_set(0)
    xy = area.centroids_km()[["x", "y"]].to_numpy()
    pop = area.streets.set_index("street_code").loc[area.codes, "population"].to_numpy(float)
    index = {code: i for i, code in enumerate(area.codes)}
    adjacency = {index[c]: [index[n] for n in ns] for c, ns in area.adjacency().items()}
    return xy, pop, adjacency


@pytest.mark.slow
def test_power_to_find_an_injected_street_cluster(city: tuple) -> None:
    # The synthetic 215-street city, 28 days, about 215 cases a day spread by population;
    # on the last 3 days, 3 extra cases a day in each of 3 adjacent streets (27 in all).
    xy, pop, adjacency = city
    detected = 0
    runs = 20
    for run in range(runs):
        rng = np.random.default_rng(run)
        cases = rng.poisson(np.outer(pop / pop.sum() * 215, np.ones(28)))
        centre = int(rng.integers(len(pop)))
        hot = [centre, *adjacency[centre][:2]]
        cases[hot, -3:] += 3
        result = scan_space_time(cases, xy_km=xy, reps=199, rng=np.random.default_rng(1000 + run))
        mlc = result.clusters[0]
        found = len(set(hot) & set(mlc.locations)) >= 2 and mlc.p_value < 0.05
        detected += found
    assert detected / runs >= 0.8, detected
