"""The shipped Changning area set, the synthetic city and the AreaSet operations."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import shapely

from geo.areas import (
    AGE_GROUPS,
    METRIC_CRS,
    AreaSet,
    age_group_of,
    build_city_area_set,
    load_area_set,
)

DATA = Path(__file__).resolve().parents[2] / "geo" / "data" / "changning"
CODES = {
    "310105001000": ("华阳路街道", "Huayanglu Subdistrict"),
    "310105002000": ("江苏路街道", "Jiangsulu Subdistrict"),
    "310105004000": ("新华路街道", "Xinhualu Subdistrict"),
    "310105005000": ("周家桥街道", "Zhoujiaqiao Subdistrict"),
    "310105006000": ("天山路街道", "Tianshanlu Subdistrict"),
    "310105008000": ("仙霞新村街道", "Xianxiaxincun Subdistrict"),
    "310105009000": ("虹桥街道", "Hongqiao Subdistrict"),
    "310105010000": ("程家桥街道", "Chengjiaqiao Subdistrict"),
    "310105011000": ("北新泾街道", "Beixinjing Subdistrict"),
    "310105102000": ("新泾镇", "Xinjing Town"),
}
XINJING, JIANGSU = "310105102000", "310105002000"


@pytest.fixture(scope="module")
def area() -> AreaSet:
    return load_area_set("changning")


@pytest.fixture(scope="module")
def city() -> AreaSet:
    return build_city_area_set(0)


def test_changning_has_the_ten_streets(area: AreaSet) -> None:
    s = area.streets
    assert area.codes == sorted(CODES)
    got = {
        c: (zh, en)
        for c, zh, en in s[["street_code", "name_zh", "name_en"]].itertuples(index=False)
    }
    assert got == CODES
    assert str(s.crs) == "EPSG:4326"
    assert set(s.geometry.geom_type) == {"Polygon"}


def test_shipped_file_says_approximate() -> None:
    raw = json.loads((DATA / "streets.geojson").read_text(encoding="utf-8"))
    assert "APPROXIMATE" in raw["note"]
    assert all(f["properties"]["approximate"] is True for f in raw["features"])
    assert "approximate" in (DATA.parents[1] / "README.md").read_text(encoding="utf-8").lower()


def test_population_total_and_age_groups(area: AreaSet) -> None:
    assert int(area.streets["population"].sum()) == 693_000
    pop = area.population
    assert (pop.groupby("street_code")["age_group"].apply(list) == [list(AGE_GROUPS)] * 10).all()
    by_street = pop.groupby("street_code")["population"].sum()
    assert by_street.to_dict() == area.streets.set_index("street_code")["population"].to_dict()
    old = pop.loc[pop["age_group"] == "60+", "population"].sum() / 693_000
    assert 0.28 < old < 0.34


def test_adjacency_symmetric_and_plausible(area: AreaSet) -> None:
    adj = area.adjacency()
    assert sorted(adj) == sorted(CODES)
    for code, neighbours in adj.items():
        assert neighbours, code
        assert code not in neighbours
        assert neighbours == sorted(neighbours)
        for n in neighbours:
            assert code in adj[n]
    assert JIANGSU not in adj[XINJING] and XINJING not in adj[JIANGSU]
    assert "310105010000" in adj[XINJING]  # 新泾镇 borders 程家桥
    adj[XINJING].clear()  # callers get a copy
    assert area.adjacency()[XINJING]


def test_xinjing_town_is_largest_and_areas_plausible(area: AreaSet) -> None:
    proj = area.projected()
    assert str(proj.crs) == METRIC_CRS
    km2 = (proj.area / 1e6).set_axis(proj["street_code"])
    assert km2.idxmax() == XINJING
    assert 30 < km2.sum() < 50  # the district is 38.3 km²


def test_centroids_km(area: AreaSet) -> None:
    cent = area.centroids_km().set_index("street_code")
    assert list(cent.index) == area.codes
    east_west = np.hypot(*(cent.loc[JIANGSU] - cent.loc[XINJING]))
    assert 6 < east_west < 11


def test_facilities_inside_their_streets(area: AreaSet) -> None:
    fac = area.facilities
    assert 18 <= len(fac) <= 25
    assert fac["facility_id"].is_unique and fac["facility_id"].iloc[0] == "F01"
    assert list(area.locate(fac["lat"], fac["lon"])) == list(fac["street_code"])
    centres = fac[fac["level"] == "chsc"]
    assert sorted(centres["street_code"]) == sorted(CODES)
    assert (centres["departments"] == "GEN;PED").all()
    assert (fac.loc[fac["level"] == "chss", "departments"] == "GEN").all()
    hospital = fac["level"].isin(["tertiary", "secondary"])
    acute = fac["departments"].str.contains("EMR|FEV")
    assert not (acute & ~hospital).any()
    assert fac.loc[hospital, "level"].value_counts().to_dict() == {"secondary": 4, "tertiary": 2}


def test_gazetteer_roads_split_by_house_number(area: AreaSet) -> None:
    gaz = area.gazetteer
    assert set(gaz["street_code"]) == set(CODES)
    per_street = gaz.groupby(["street_code", "kind"]).size().unstack()
    assert per_street["road"].between(4, 8).all()
    assert per_street["compound"].between(2, 5).all()
    crossing = gaz[gaz.duplicated("name_zh", keep=False)]
    assert {"长宁路", "延安西路", "仙霞路"} <= set(crossing["name_zh"])
    assert crossing["number_from"].notna().all() and (crossing["kind"] == "road").all()
    assert {"华阳路街道", "华阳街道"} <= set(gaz.loc[gaz["kind"] == "street", "name_zh"])


def test_locate_sampled_points_and_outside(area: AreaSet) -> None:
    codes = np.repeat(area.codes, 200)
    lat, lon = area.sample_points(codes, np.random.default_rng(1))
    assert list(area.locate(lat, lon)) == list(codes)
    # the Huangpu river at the Bund, Beijing, Hongqiao railway station, missing coordinates
    outside = area.locate(
        [31.235, 39.9, 31.194, np.nan, 31.21], [121.492, 116.4, 121.32, 121.4, np.nan]
    )
    assert list(outside) == [None] * 5
    grid = area.locate(np.full((2, 3), 31.21), np.full((2, 3), 121.40))
    assert grid.shape == (2, 3) and set(grid.ravel()) == {"310105006000"}


def test_sample_points_deterministic_and_inside(area: AreaSet) -> None:
    codes = np.array([XINJING, JIANGSU] * 500)
    a = area.sample_points(codes, np.random.default_rng(7))
    b = area.sample_points(codes, np.random.default_rng(7))
    c = area.sample_points(codes, np.random.default_rng(8))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    shapes = area.streets.set_index("street_code").geometry.loc[codes].to_numpy()
    assert shapely.contains_xy(shapes, a[1], a[0]).all()
    assert a[1][codes == XINJING].mean() < a[1][codes == JIANGSU].mean()  # west of
    with pytest.raises(ValueError, match="not in area set"):
        area.sample_points(["310105003000"], np.random.default_rng(0))


def test_city_set(city: AreaSet) -> None:
    codes = city.codes
    assert len(codes) == 215 == len(set(codes))
    assert all(len(c) == 12 and c.isdigit() for c in codes)
    assert len({c[:6] for c in codes}) == 16
    assert abs(int(city.streets["population"].sum()) - 25_000_000) <= 250_000
    assert set(CODES) <= set(codes)
    assert "黄浦区第3街道" in set(city.streets["name_zh"])
    by_street = city.population.groupby("street_code")["population"].sum()
    assert (by_street.loc[codes].to_numpy() == city.streets.set_index("street_code").loc[codes, "population"].to_numpy()).all()  # fmt: skip
    fac = city.facilities
    assert (fac.loc[fac["level"] == "chsc", "street_code"].value_counts() == 1).all()
    assert fac.loc[fac["level"] == "chsc", "street_code"].nunique() == 215
    hospitals = fac[fac["level"].isin(["tertiary", "secondary"])]
    assert hospitals["street_code"].str[:6].value_counts().between(2, 4).all()
    assert list(city.locate(fac["lat"], fac["lon"])) == list(fac["street_code"])
    assert all(city.adjacency().values())


def test_city_set_deterministic_and_fast() -> None:
    start = time.perf_counter()
    one = build_city_area_set.__wrapped__(3)
    assert time.perf_counter() - start < 3.0
    two = build_city_area_set.__wrapped__(3)
    other = build_city_area_set.__wrapped__(4)
    assert one.streets.equals(two.streets) and one.facilities.equals(two.facilities)
    assert one.population.equals(two.population)
    assert not one.streets.equals(other.streets)
    changning = one.streets[one.streets["street_code"].str.startswith("310105")]
    shipped = load_area_set().streets
    assert shapely.equals(changning.geometry.to_numpy(), shipped.geometry.to_numpy()).all()


@pytest.mark.parametrize(
    ("age", "group"),
    [(0, "0-4"), (4, "0-4"), (4.9, "0-4"), (5, "5-14"), (14, "5-14"), (15, "15-24"), (24, "15-24"),
     (25, "25-59"), (59, "25-59"), (60, "60+"), (101, "60+"), (-1, ""), (np.nan, "")],
)  # fmt: skip
def test_age_group_boundaries(age: float, group: str) -> None:
    assert age_group_of(np.array([age]))[0] == group


def test_age_group_vectorised() -> None:
    groups = age_group_of(np.arange(0, 100))
    assert groups.shape == (100,)
    assert [int((groups == g).sum()) for g in AGE_GROUPS] == [5, 10, 10, 35, 40]
