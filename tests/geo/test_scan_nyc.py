"""SaTScan's NYC fever sample: the engine gives SaTScan's published answers.

Two published SaTScan runs on this data are the reference
(``tests/assets/scan/satscan_nycfever_published.json`` records where they come from):

- SaTScan v10.1.2 with the sample's own parameter file (prospective space-time
  permutation, 2001/11/1–24, lat/long, circles ≤ 3 km, windows ≤ 7 days, 999 replicates):
  windows, observed and expected counts, centres, radius and p-values of three clusters;
- SaTScan v9.4.4, same data, no distance cap and windows ≤ 12 days: location ids and test
  statistics (LLR, 6 decimals) of three clusters. Its most likely cluster lies within
  3 km and 7 days, so it is also the most likely cluster of the first analysis.

Independently of both, every reported cluster is compared with the brute-force reference
(``tests/assets/scan/brute_force.py``), to 1e-9 on the LLR.
"""

from __future__ import annotations

import configparser
import datetime as dt
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from geo.scan import ScanResult, scan_space_time

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "scan"
PUBLISHED = json.loads((ASSETS / "satscan_nycfever_published.json").read_text(encoding="utf-8"))
WEB_MAP_RADIUS_KM = 6378.137  # the radius SaTScan's Google map output draws circles with
SATSCAN_RADIUS_KM = 6367.0


def _load_brute_force() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scan_brute_force", ASSETS / "brute_force.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


brute = _load_brute_force()


class NYC:
    """The sample as arrays, and the settings of SaTScan's parameter file."""

    def __init__(self) -> None:
        prm = configparser.ConfigParser(inline_comment_prefixes=(";",))
        prm.read(ASSETS / "NYCSpaceTimePermutation.prm", encoding="utf-8")
        day = lambda text: dt.datetime.strptime(text, "%Y/%m/%d").date()  # noqa: E731
        self.start = day(prm["Input"]["StartDate"])
        self.end = day(prm["Input"]["EndDate"])
        assert prm["Input"]["CoordinatesType"] == "1"  # latitude/longitude
        assert prm["Analysis"]["AnalysisType"] == "4" and prm["Analysis"]["ModelType"] == "2"
        assert prm["Temporal Window"]["MaxTemporalSizeInterpretation"] == "1"  # in days
        self.max_days = int(prm["Temporal Window"]["MaxTemporalSize"])
        self.max_radius_km = float(prm["Spatial Window"]["MaxSpatialSizeInDistanceFromCenter"])
        self.max_size_pct = float(prm["Spatial Window"]["MaxSpatialSizeInPopulationAtRisk"])
        self.reps = int(prm["Inference"]["MonteCarloReps"])
        geo = pd.read_csv(
            ASSETS / "NYCfever.geo",
            sep=r"\s+",
            header=None,
            names=["id", "lat", "lon"],
            dtype={"id": str},
        )
        cas = pd.read_csv(
            ASSETS / "NYCfever.cas",
            sep=r"\s+",
            header=None,
            names=["id", "n", "date"],
            dtype={"id": str},
        )
        self.ids = geo["id"].tolist()
        self.lat_lon = geo[["lat", "lon"]].to_numpy()
        n_days = (self.end - self.start).days + 1
        self.cases = np.zeros((len(self.ids), n_days), dtype=np.int64)
        row = {code: i for i, code in enumerate(self.ids)}
        for code, n, date in cas.itertuples(index=False):
            self.cases[row[code], (day(date) - self.start).days] += n

    def date(self, day_index: int) -> str:
        return (self.start + dt.timedelta(days=day_index)).isoformat()

    def scan(
        self, *, max_days: int, max_radius_km: float | None, seed: int = 20011124
    ) -> ScanResult:
        return scan_space_time(
            self.cases,
            lat_lon=self.lat_lon,
            max_days=max_days,
            max_radius_km=max_radius_km,
            max_size_pct=self.max_size_pct,
            reps=self.reps,
            rng=np.random.default_rng(seed),
            location_ids=self.ids,
        )


@pytest.fixture(scope="module")
def nyc() -> NYC:
    data = NYC()
    assert data.cases.sum() == 194 and len(data.ids) == 192  # as SaTScan's summary says
    return data


@pytest.fixture(scope="module")
def prm_run(nyc: NYC) -> ScanResult:
    return nyc.scan(max_days=nyc.max_days, max_radius_km=nyc.max_radius_km)


@pytest.fixture(scope="module")
def wide_run(nyc: NYC) -> ScanResult:
    return nyc.scan(max_days=12, max_radius_km=None)


def _prints_as(value: float, printed: float) -> bool:
    # SaTScan prints 2 decimals and rounds halves up (2 / (32/194) = 12.125 prints 12.13)
    return abs(value - printed) <= 0.005 + 1e-9


def _monte_carlo_tolerance(p: float, reps_satscan: float, reps_ours: int) -> float:
    # three standard errors of the difference of two independent Monte Carlo estimates
    return 3.0 * math.sqrt(p * (1 - p) / reps_satscan + p * (1 - p) / reps_ours)


def test_prm_run_reproduces_satscan_v10_clusters(nyc: NYC, prm_run: ScanResult) -> None:
    published = PUBLISHED["runs"]["prm_3km_7days"]["clusters"]
    assert len(prm_run.clusters) >= len(published)
    # SaTScan stopped its replicates after 50 exceeded the most likely cluster's LLR
    # (sequential Monte Carlo): p = 50 / replicates run.
    satscan_reps = 50 / published[0]["p_value"]
    for got, want in zip(prm_run.clusters, published, strict=False):
        centre = nyc.ids.index(got.centre_id)
        assert nyc.lat_lon[centre].tolist() == pytest.approx(
            [want["centre_lat"], want["centre_lon"]], abs=1e-9
        )
        assert (nyc.date(got.start_day), nyc.date(got.end_day)) == (want["start"], want["end"])
        assert got.observed == want["observed"]
        assert _prints_as(got.expected, want["expected"])
        assert _prints_as(got.observed / got.expected, want["observed_over_expected"])
        assert len(got.locations) == want["n_locations"]
        tol = _monte_carlo_tolerance(want["p_value"], satscan_reps, nyc.reps)
        assert abs(got.p_value - want["p_value"]) <= tol, (got.p_value, want["p_value"], tol)
    # the map's circle is our arc on SaTScan's 6367 km sphere, redrawn on the web map's
    # 6378.137 km one: this checks the chord/arc convention to the metre's millionth
    mlc = prm_run.clusters[0]
    map_radius_m = mlc.radius_km * WEB_MAP_RADIUS_KM / SATSCAN_RADIUS_KM * 1000.0
    assert map_radius_m == pytest.approx(published[0]["map_radius_m"], abs=1e-6)


def test_prm_run_most_likely_cluster_matches_satscan_v9_text(prm_run: ScanResult) -> None:
    want = PUBLISHED["runs"]["no_cap_12days"]["clusters"][0]
    mlc = prm_run.clusters[0]
    assert mlc.location_ids == tuple(sorted(want["location_ids"]))
    assert mlc.centre_id == want["location_ids"][0]  # SaTScan lists the centre first
    assert abs(mlc.llr - want["llr"]) <= 5e-7  # SaTScan prints 6 decimals
    assert _prints_as(mlc.radius_km, want["radius_km"])
    assert mlc.observed == 4 and mlc.expected == pytest.approx(130 / 194, rel=1e-12)
    # SaTScan's relative risk definition, by hand: (4 / μ) / (190 / (194 − μ))
    mu = 130 / 194
    assert mlc.relative_risk == pytest.approx((4 / mu) / (190 / (194 - mu)), rel=1e-12)
    assert mlc.recurrence_interval_days == pytest.approx(1 / mlc.p_value)


def test_wide_run_reproduces_satscan_v9_text(nyc: NYC, wide_run: ScanResult) -> None:
    published = PUBLISHED["runs"]["no_cap_12days"]["clusters"]
    assert [c.location_ids for c in wide_run.clusters[:3]] == [
        tuple(sorted(w["location_ids"])) for w in published
    ]
    for got, want in zip(wide_run.clusters, published, strict=False):
        assert got.centre_id == want["location_ids"][0]
        assert abs(got.llr - want["llr"]) <= 5e-7
        assert (nyc.date(got.start_day), nyc.date(got.end_day)) == (want["start"], want["end"])
        assert got.observed == want["observed"]
        assert _prints_as(got.expected, want["expected"])
        assert _prints_as(got.radius_km, want["radius_km"])


@pytest.mark.parametrize(
    ("run", "max_days", "max_radius_km"), [("prm_run", 7, 3.0), ("wide_run", 12, None)]
)
def test_nyc_agrees_with_brute_force(
    nyc: NYC, run: str, max_days: int, max_radius_km: float | None, request: pytest.FixtureRequest
) -> None:
    result: ScanResult = request.getfixturevalue(run)
    points = [brute.sphere_point(lat, lon) for lat, lon in nyc.lat_lon]
    reference = brute.brute_force_scan(
        nyc.cases.tolist(), points, max_days=max_days, max_radius=max_radius_km, max_size_pct=50.0
    )
    # the engine drops clusters with p > 0.999; the reference has no p-values
    assert len(result.clusters) <= len(reference)
    assert len(result.clusters) >= 3
    for got, ref in zip(result.clusters, reference, strict=False):
        assert got.centre == ref.centre
        assert got.locations == tuple(sorted(ref.members))
        assert got.start_day == nyc.cases.shape[1] - ref.days
        assert got.observed == ref.observed
        assert got.expected == pytest.approx(ref.expected, rel=1e-12)
        assert got.llr == pytest.approx(ref.llr, abs=1e-9)


def test_satscan_lists_locations_in_our_entry_order(nyc: NYC) -> None:
    # SaTScan prints a cluster's ids in the order they entered the circle: the reference's
    # distance order (chords on the 6367 km sphere, ties by coordinates) gives the same.
    points = [brute.sphere_point(lat, lon) for lat, lon in nyc.lat_lon]
    reference = brute.brute_force_scan(nyc.cases.tolist(), points, max_days=12, max_size_pct=50.0)
    for ref, want in zip(reference, PUBLISHED["runs"]["no_cap_12days"]["clusters"], strict=False):
        assert [nyc.ids[m] for m in ref.members] == want["location_ids"]


def test_nyc_scan_is_reproducible_with_the_same_seed(nyc: NYC, prm_run: ScanResult) -> None:
    again = nyc.scan(max_days=nyc.max_days, max_radius_km=nyc.max_radius_km)
    np.testing.assert_array_equal(again.replicate_maxima, prm_run.replicate_maxima)
    assert [c.p_value for c in again.clusters] == [c.p_value for c in prm_run.clusters]
