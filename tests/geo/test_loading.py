"""Area sets from boundary files: formats, validation, age split, registration, distances.

Fixtures in tests/assets/geo/ are made by make_fixtures.py there from the shipped
(approximate) Changning boundaries, so every format must give back the shipped streets.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from libpysal.weights import Queen

from geo.areas import AreaSet, build_city_area_set, load_area_set, utm_crs
from geo.loading import (
    DEFAULT_AGE_SHARES,
    AreaSetFileError,
    describe_area_set,
    read_area_set,
    register_area_set,
    split_population_by_age,
)
from geo.tables import AGE_GROUPS

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "geo"
GEOJSON: dict[str, Any] = {
    "code_field": "code",
    "name_field": "name",
    "name_en_field": "name_en",
    "population_field": "pop",
}
GPKG: dict[str, Any] = {
    "code_field": "CODE",
    "name_field": "NAME_ZH",
    "population_field": "POP",
    "layer": "streets",
}
SHP: dict[str, Any] = {"code_field": "XZQDM", "name_field": "XZQMC", "population_field": "RKS"}
FORMATS = {"changning.geojson": GEOJSON, "changning.gpkg": GPKG, "changning.shp": SHP}
XINJING, JIANGSU, TIANSHAN = "310105102000", "310105002000", "310105006000"


@pytest.fixture(scope="module")
def shipped() -> AreaSet:
    return load_area_set("changning")


def _queen(frame: gpd.GeoDataFrame, ids: list[str]) -> dict[str, list[str]]:
    """Reference adjacency: libpysal's queen contiguity on the file as read."""
    w = Queen.from_dataframe(frame, ids=ids, use_index=False, silence_warnings=True)
    return {k: sorted(v) for k, v in w.neighbors.items()}


@pytest.mark.parametrize("file", sorted(FORMATS))
def test_each_format_gives_the_shipped_streets(file: str, shipped: AreaSet) -> None:
    area = read_area_set(ASSETS / file, name="x", **FORMATS[file])
    s, ref = area.streets, shipped.streets
    assert area.codes == shipped.codes
    assert s["street_code"].map(type).eq(str).all()  # GeoPackage codes are integers
    assert str(s.crs) == "EPSG:4326"
    assert s["name_zh"].tolist() == ref["name_zh"].tolist()
    assert s["population"].tolist() == ref["population"].tolist()
    assert s["population"].dtype == np.int64
    english = ref["name_en"] if file.endswith(".geojson") else ref["name_zh"]
    assert s["name_en"].tolist() == english.tolist()
    # The Shapefile went through CGCS2000 Gauss-Kruger and back: within a centimetre.
    gap = shapely.hausdorff_distance(s.geometry.to_numpy(), ref.geometry.to_numpy())
    assert gap.max() < 1e-7
    assert area.adjacency() == shipped.adjacency()


def _edited(tmp_path: Path, change: dict[int, dict[str, object]]) -> Path:
    data = json.loads((ASSETS / "changning.geojson").read_text(encoding="utf-8"))
    for i, props in change.items():
        data["features"][i]["properties"].update(props)
    out = tmp_path / "edited.geojson"
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.mark.parametrize(
    ("file", "fields", "message"),
    [
        (
            "duplicate_codes.geojson",
            GEOJSON,
            r"duplicate_codes\.geojson: duplicate street_code: 310105001000$",
        ),
        (
            "invalid_geometry.geojson",
            GEOJSON,
            r"invalid_geometry\.geojson: invalid geometry: 310105006000 \(Self-intersection\[",
        ),
        ("no_crs.shp", SHP, r"no_crs\.shp: coordinate reference system unknown"),
        (
            "bad_population.geojson",
            GEOJSON,
            r"bad_population\.geojson: population must be positive: 310105004000, 310105008000$",
        ),
        ("empty.geojson", GEOJSON, r"empty\.geojson: no features$"),
        (
            "points.geojson",
            GEOJSON,
            r"points\.geojson: geometry must be a Polygon or MultiPolygon",
        ),
        (
            "changning.geojson",
            {**GEOJSON, "name_field": "nom"},
            r"changning\.geojson: missing field 'nom'; fields in the file: code, name, name_en, pop, note$",
        ),
        (
            "changning.shp",
            {**SHP, "population_field": "POP"},
            r"changning\.shp: missing field 'POP'; fields in the file: XZQDM, XZQMC, RKS$",
        ),
        (
            "changning.gpkg",
            {**GPKG, "layer": None},
            r"changning\.gpkg: several layers \(streets, outline\); choose one with --layer$",
        ),
        ("nowhere.gpkg", GPKG, r"nowhere\.gpkg: file not found$"),
    ],
)
def test_broken_files_are_named_with_the_problem(file: str, fields: dict, message: str) -> None:
    with pytest.raises(AreaSetFileError, match=message):
        read_area_set(ASSETS / file, name="x", **fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({3: {"pop": "many"}}, r"population field 'pop' missing or not a number: 310105005000$"),
        ({0: {"pop": 72000.5}}, r"population must be whole numbers: 72000\.5$"),
        ({4: {"code": "3101050060"}}, r"street_code must be a 12-digit string: 3101050060$"),
        ({2: {"code": None}}, r"code field 'code' missing in 1 features$"),
        ({1: {"name": None}}, r"name_zh missing: 310105002000$"),
    ],
)
@pytest.mark.filterwarnings("ignore:Could not parse column:UserWarning")
def test_bad_values_are_named(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(AreaSetFileError, match=r"edited\.geojson: " + message):
        read_area_set(_edited(tmp_path, change), name="x", **GEOJSON)


def test_not_a_boundary_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.geojson"
    junk.write_text("this is not json", encoding="utf-8")
    with pytest.raises(AreaSetFileError, match=r"junk\.geojson: cannot be read as a boundary file"):
        read_area_set(junk, name="x", **GEOJSON)


def test_wrong_crs_is_caught(tmp_path: Path) -> None:
    """Metres labelled as degrees (a common export mistake) are not lon/lat."""
    frame = gpd.read_file(ASSETS / "changning.gpkg", layer="streets")
    path = tmp_path / "mislabelled.gpkg"
    frame.set_crs("EPSG:4326", allow_override=True).to_file(path)
    with pytest.raises(
        AreaSetFileError,
        match=r"mislabelled\.gpkg: coordinates not lon/lat after reprojection from EPSG:4326 \(wrong CRS",
    ):
        read_area_set(path, name="x", **{**GPKG, "layer": None})


def test_make_valid_repairs_only_when_asked(shipped: AreaSet) -> None:
    path = ASSETS / "invalid_geometry.geojson"
    area = read_area_set(path, name="x", make_valid=True, **GEOJSON)
    repaired = area.streets.set_index("street_code").geometry[TIANSHAN]
    original = shipped.streets.set_index("street_code").geometry[TIANSHAN]
    assert repaired.is_valid and repaired.geom_type == "Polygon"
    # The spike has no area: the repair gives back the street's polygon.
    assert shapely.symmetric_difference(repaired, original).area < 1e-12
    assert area.adjacency() == shipped.adjacency()


def test_age_file_is_used_and_checked(tmp_path: Path, shipped: AreaSet) -> None:
    ages = ASSETS / "changning_ages.csv"
    area = read_area_set(ASSETS / "changning.shp", name="x", age_file=ages, **SHP)
    pd.testing.assert_frame_equal(area.population, shipped.population)
    table = pd.read_csv(ages, dtype={"street_code": "str"})
    table["population"] += np.where(table.index == 0, 1, 0)  # one more child in 华阳路
    bad = tmp_path / "ages.csv"
    table.to_csv(bad, index=False)
    with pytest.raises(
        AreaSetFileError,
        match=r"ages\.csv: age groups do not sum to the street population: 310105001000$",
    ):
        read_area_set(ASSETS / "changning.shp", name="x", age_file=bad, **SHP)


def test_default_age_split_hand_computed() -> None:
    got = split_population_by_age(["a", "b", "c"], [1000, 7, 0])
    a, b, c = got["population"].to_numpy().reshape(3, len(AGE_GROUPS)).tolist()
    assert a == [30, 68, 85, 583, 234]
    # quotas 0.21 0.476 0.595 4.081 1.638: floors 0 0 0 4 1, the 2 left go to 60+ (.638)
    # and 15-24 (.595)
    assert b == [0, 0, 1, 4, 2]
    assert c == [0, 0, 0, 0, 0]
    assert got["street_code"].tolist() == ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    assert list(got["age_group"][:5]) == list(AGE_GROUPS)
    assert math.isclose(sum(DEFAULT_AGE_SHARES.values()), 1.0)


def _hamilton_reference(total: int, shares: list[float]) -> list[int]:
    """Largest remainder, one street at a time, in plain Python."""
    norm = sum(shares)
    quotas = [total * (s / norm) for s in shares]
    counts = [math.floor(q) for q in quotas]
    left = total - sum(counts)
    by_remainder = sorted(range(len(shares)), key=lambda g: (-(quotas[g] - counts[g]), g))
    for g in by_remainder[:left]:
        counts[g] += 1
    return counts


@settings(max_examples=150, deadline=None)
@given(
    totals=st.lists(st.integers(0, 3_000_000), min_size=1, max_size=30),
    shares=st.lists(st.floats(0.0, 1.0), min_size=5, max_size=5).filter(lambda s: sum(s) > 1e-3),
)
def test_age_split_matches_reference(totals: list[int], shares: list[float]) -> None:
    mapping = dict(zip(AGE_GROUPS, shares, strict=True))
    got = split_population_by_age([f"s{i}" for i in range(len(totals))], totals, mapping)
    counts = got["population"].to_numpy().reshape(len(totals), len(AGE_GROUPS))
    expected = np.array([_hamilton_reference(t, shares) for t in totals])
    np.testing.assert_array_equal(counts, expected)
    assert (counts.sum(axis=1) == np.array(totals)).all()
    quota = np.array(totals)[:, None] * (np.array(shares) / sum(shares))
    assert (np.abs(counts - quota) < 1 + 1e-6).all()


def test_register_round_trip(tmp_path: Path, shipped: AreaSet) -> None:
    source = ASSETS / "changning.shp"
    folder = register_area_set(tmp_path, "cn_test", source, **SHP)
    assert folder == tmp_path / "geo" / "cn_test"
    assert sorted(p.name for p in folder.iterdir()) == [
        "facilities.csv",
        "gazetteer.csv",
        "population.csv",
        "source.json",
        "streets.geojson",
    ]
    assert not list((tmp_path / "geo").glob(".*"))  # no staging folder left behind
    area = load_area_set("cn_test", tmp_path)
    direct = read_area_set(source, name="cn_test", **SHP)
    raw = gpd.read_file(source)
    assert area.codes == sorted(raw["XZQDM"])
    assert area.streets["population"].tolist() == raw.sort_values("XZQDM")["RKS"].tolist()
    pd.testing.assert_frame_equal(area.population, direct.population)
    assert area.adjacency() == _queen(raw, raw["XZQDM"].tolist())
    np.testing.assert_allclose(
        area.centroids_km()[["x", "y"]], direct.centroids_km()[["x", "y"]], atol=1e-6
    )
    assert area.facilities.empty and area.facilities.columns[0] == "facility_id"
    assert set(area.gazetteer["name_zh"]) == set(shipped.streets["name_zh"])
    about = json.loads((folder / "source.json").read_text(encoding="utf-8"))
    assert about["fields"]["code"] == "XZQDM" and about["population"] == 693_000
    assert about["age_structure"] == {"default_shares": dict(DEFAULT_AGE_SHARES)}
    assert describe_area_set(area) == (
        "area set cn_test: 10 streets, population 693,000, metric CRS EPSG:32651"
    )


def test_register_refuses_and_replaces(tmp_path: Path) -> None:
    source = ASSETS / "changning.geojson"
    register_area_set(tmp_path, "cn", source, **GEOJSON)
    with pytest.raises(
        AreaSetFileError, match=r"area set 'cn' already registered \(--force replaces it\)"
    ):
        register_area_set(tmp_path, "cn", source, **GEOJSON)
    with pytest.raises(AreaSetFileError, match="taken by a shipped set"):
        register_area_set(tmp_path, "changning", source, **GEOJSON)
    with pytest.raises(AreaSetFileError, match=r"area set name '\.\./up'"):
        register_area_set(tmp_path, "../up", source, **GEOJSON)
    # A failed replacement keeps the old set.
    with pytest.raises(AreaSetFileError, match="duplicate street_code"):
        register_area_set(
            tmp_path, "cn", ASSETS / "duplicate_codes.geojson", overwrite=True, **GEOJSON
        )
    assert load_area_set("cn", tmp_path).streets["name_en"].iloc[0] == "Huayanglu Subdistrict"
    register_area_set(tmp_path, "cn", ASSETS / "changning.gpkg", overwrite=True, **GPKG)
    assert load_area_set("cn", tmp_path).streets["name_en"].iloc[0] == "华阳路街道"
    assert sorted(p.name for p in (tmp_path / "geo").iterdir()) == ["cn"]


def test_shipped_names_first_and_unknown_lists_registered(tmp_path: Path) -> None:
    register_area_set(tmp_path, "cn", ASSETS / "changning.geojson", **GEOJSON)
    shutil.copytree(tmp_path / "geo" / "cn", tmp_path / "geo" / "changning")
    (tmp_path / "geo" / "changning" / "streets.geojson").write_text("broken", encoding="utf-8")
    assert len(load_area_set("changning", tmp_path).facilities) > 0  # the shipped one
    with pytest.raises(
        ValueError,
        match=r"unknown area set 'nope'; shipped: changning; registered in .*geo: changning, cn$",
    ):
        load_area_set("nope", tmp_path)
    with pytest.raises(ValueError, match=r"unknown area set 'cn'; shipped: changning$"):
        load_area_set("cn")


def test_centroids_km_a_few_km_apart(tmp_path: Path) -> None:
    area = read_area_set(ASSETS / "changning.gpkg", name="x", **GPKG)
    assert area.metric_crs == "EPSG:32651"
    cent = area.centroids_km().set_index("street_code")
    xy = cent[["x", "y"]].to_numpy()
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(dist, np.inf)
    nearest = dist.min(axis=1)
    assert (nearest > 0.8).all() and (nearest < 4.0).all()
    assert dist[np.isfinite(dist)].max() < 12.0  # the district is about 11 km across
    assert 6 < np.hypot(*(cent.loc[JIANGSU] - cent.loc[XINJING])) < 11
    # Shanghai is in UTM zone 51: x near the 500 km false easting, y about 3,450 km north.
    assert ((xy[:, 0] > 300) & (xy[:, 0] < 400)).all()
    assert ((xy[:, 1] > 3440) & (xy[:, 1] < 3470)).all()


@pytest.mark.parametrize(
    ("lon", "lat", "crs"),
    [
        (121.4, 31.2, "EPSG:32651"),  # Shanghai
        (87.6, 43.8, "EPSG:32645"),  # Urumqi
        (-74.0, 40.7, "EPSG:32618"),  # New York
        (151.2, -33.9, "EPSG:32756"),  # Sydney, southern hemisphere
        (180.0, 0.0, "EPSG:32601"),  # the antimeridian wraps to zone 1
        (-180.0, 0.0, "EPSG:32601"),
        (126.0, 10.0, "EPSG:32652"),  # a zone edge belongs to the zone to its east
    ],
)
def test_utm_zone_hand_computed(lon: float, lat: float, crs: str) -> None:
    assert utm_crs(lon, lat) == crs


def test_a_set_elsewhere_uses_its_own_zone(tmp_path: Path, shipped: AreaSet) -> None:
    moved = shipped.streets.copy()
    moved["geometry"] = shapely.transform(moved.geometry.to_numpy(), lambda xy: xy - [34.0, 0.0])
    path = tmp_path / "moved.gpkg"
    moved.rename(columns={"street_code": "c", "name_zh": "n", "population": "p"}).to_file(path)
    area = read_area_set(path, name="moved", code_field="c", name_field="n", population_field="p")
    assert area.metric_crs == "EPSG:32645"
    here, there = (
        shipped.centroids_km()[["x", "y"]].to_numpy(),
        area.centroids_km()[["x", "y"]].to_numpy(),
    )
    d_here = np.hypot(*(here[:, None] - here[None]).transpose(2, 0, 1))
    d_there = np.hypot(*(there[:, None] - there[None]).transpose(2, 0, 1))
    off = ~np.eye(len(here), dtype=bool)
    # Same shapes at the same latitude, each near its own zone's meridian: same distances.
    np.testing.assert_allclose(d_there[off], d_here[off], rtol=1e-3)


def test_point_in_polygon_on_a_loaded_set(tmp_path: Path) -> None:
    area = read_area_set(ASSETS / "changning.shp", name="x", **SHP)
    codes = np.repeat(area.codes, 20)
    lat, lon = area.sample_points(codes, np.random.default_rng(5))
    assert (area.locate(lat, lon) == codes).all()
    assert area.locate([31.0], [121.0])[0] is None  # outside the district


def test_a_city_sized_file(tmp_path: Path) -> None:
    city = build_city_area_set(0)
    path = tmp_path / "city.gpkg"
    renamed = city.streets.rename(
        columns={"street_code": "code", "name_zh": "zh", "name_en": "en", "population": "pop"}
    )
    renamed.to_crs("EPSG:4549").to_file(path, layer="streets")
    start = time.perf_counter()
    area = read_area_set(
        path,
        name="city2",
        code_field="code",
        name_field="zh",
        name_en_field="en",
        population_field="pop",
    )
    seconds = time.perf_counter() - start
    assert area.codes == city.codes and len(area.codes) == 215
    assert area.adjacency() == city.adjacency()
    assert (
        area.population.groupby("street_code")["population"].sum().tolist()
        == city.streets["population"].tolist()
    )
    assert seconds < 5.0
