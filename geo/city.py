"""A SYNTHETIC Shanghai-sized city: 16 real district codes, 215 streets, ~24.9 M residents.

Only the district codes, names, rough centres, land areas and 2020 census populations are
real. Changning keeps its 10 shipped (approximate) streets; every other street is made up:
its code is the district code + a 3-digit number + ``000``, its name ``黄浦区第3街道`` /
``Huangpu Street 3``, and its polygon is a Voronoi cell around a jittered lattice point near
the district's centre, cut away from Changning. Streets of a district stay together because
a seed belongs to the district nearest to it in units of the district's radius. Population,
age structure, facilities and gazetteer entries are drawn from a seeded generator, so a
seed gives the same city every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.areas import GEOGRAPHIC_CRS, AreaSet, load_area_set
from geo.tables import (
    AGE_GROUPS,
    validate_facilities,
    validate_gazetteer,
    validate_population,
    validate_streets,
)


@dataclass(frozen=True)
class District:
    """A Shanghai district: code, names, street count, population, land area, centre."""

    code: str
    name_zh: str
    name_en: str
    streets: int
    population: int
    area_km2: float
    lon: float
    lat: float


# 2020 census populations; land areas and centres approximate.
DISTRICTS: tuple[District, ...] = (
    District("310101", "黄浦区", "Huangpu", 10, 662_030, 20.5, 121.484, 31.224),
    District("310104", "徐汇区", "Xuhui", 13, 1_113_078, 54.8, 121.437, 31.166),
    District("310105", "长宁区", "Changning", 10, 693_051, 38.3, 121.390, 31.209),
    District("310106", "静安区", "Jing'an", 14, 975_707, 36.9, 121.452, 31.258),
    District("310107", "普陀区", "Putuo", 10, 1_239_842, 54.8, 121.396, 31.255),
    District("310109", "虹口区", "Hongkou", 8, 757_498, 23.5, 121.490, 31.275),
    District("310110", "杨浦区", "Yangpu", 12, 1_242_548, 60.7, 121.526, 31.290),
    District("310112", "闵行区", "Minhang", 14, 2_653_489, 370.8, 121.385, 31.095),
    District("310113", "宝山区", "Baoshan", 12, 2_235_218, 271.0, 121.420, 31.390),
    District("310114", "嘉定区", "Jiading", 12, 1_834_258, 464.2, 121.245, 31.360),
    District("310115", "浦东新区", "Pudong", 36, 5_681_512, 1210.4, 121.640, 31.150),
    District("310116", "金山区", "Jinshan", 10, 822_776, 586.1, 121.250, 30.820),
    District("310117", "松江区", "Songjiang", 17, 1_909_713, 605.6, 121.225, 31.030),
    District("310118", "青浦区", "Qingpu", 11, 1_271_424, 670.1, 121.080, 31.150),
    District("310120", "奉贤区", "Fengxian", 10, 1_140_872, 687.4, 121.480, 30.915),
    District("310151", "崇明区", "Chongming", 16, 637_921, 1185.5, 121.600, 31.620),
)
SHIPPED = "310105"  # Changning: the shipped area set stands in for the district
AGE_SHARES = np.array([0.035, 0.075, 0.075, 0.505, 0.31])  # like Changning

# The city is drawn on a local plane in km around this origin.
_LON0, _LAT0 = 121.45, 31.2
_KX = 111.32 * math.cos(math.radians(_LAT0))
_KY = 110.57

# level, kind, name suffix zh/en, departments, weight; the first is every district's
# general hospital, 1-3 of the others are drawn per district.
HOSPITALS = (
    ("tertiary", "general", "中心医院", "Central Hospital", "GEN;PED;EMR;FEV;DER;OPH;GI", 8.0),
    ("secondary", "general", "人民医院", "People's Hospital", "GEN;PED;EMR;FEV;OPH", 4.0),
    ("secondary", "tcm", "中医医院", "Hospital of Traditional Chinese Medicine", "GEN;EMR;FEV;DER", 4.0),
    ("secondary", "maternal_child", "妇幼保健院", "Maternal and Child Health Hospital", "GEN;PED;EMR", 3.0),
    ("tertiary", "paediatric", "儿童医院", "Children's Hospital", "PED;EMR;FEV;DER;OPH;GI", 6.0),
)  # fmt: skip


def _to_km(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (lon - _LON0) * _KX, (lat - _LAT0) * _KY


def _to_degrees(xy: np.ndarray) -> np.ndarray:
    return np.round(np.column_stack([_LON0 + xy[:, 0] / _KX, _LAT0 + xy[:, 1] / _KY]), 6)


def _radius_km(d: District) -> float:
    return math.sqrt(d.area_km2 / math.pi)


def _district_seeds(
    k: int,
    centres: np.ndarray,
    radii: np.ndarray,
    avoid: shapely.Geometry,
    rng: np.random.Generator,
) -> np.ndarray:
    """Seed points (km) of district ``k``'s streets: a jittered hexagonal lattice."""
    d = DISTRICTS[k]
    r = radii[k]
    spacing = math.sqrt(d.area_km2 / d.streets)
    while True:
        n = math.ceil(r / spacing) + 1
        i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
        x = (i + (j % 2) / 2.0).ravel() * spacing + centres[k, 0]
        y = j.ravel() * spacing * math.sqrt(3) / 2 + centres[k, 1]
        reach = np.hypot(x[:, None] - centres[None, :, 0], y[:, None] - centres[None, :, 1])
        mine = (np.argmin(reach / radii[None, :], axis=1) == k) & (reach[:, k] <= r)
        mine &= ~shapely.intersects_xy(avoid, x, y)
        if mine.sum() >= d.streets:
            break
        spacing *= 0.9
    x, y = x[mine], y[mine]
    nearest = np.argsort(np.hypot(x - centres[k, 0], y - centres[k, 1]), kind="stable")
    pts = np.column_stack([x, y])[nearest[: d.streets]]
    return pts + rng.uniform(-0.2, 0.2, pts.shape) * spacing


def _synthetic_polygons(
    changning: gpd.GeoDataFrame, rng: np.random.Generator
) -> tuple[list[str], list[shapely.Geometry]]:
    """District code and polygon (EPSG:4326) of every synthetic street, district by district."""
    lon = np.array([d.lon for d in DISTRICTS])
    lat = np.array([d.lat for d in DISTRICTS])
    centres = np.column_stack(_to_km(lon, lat))
    radii = np.array([_radius_km(d) for d in DISTRICTS])
    shipped = shapely.union_all(changning.geometry.to_numpy())
    shipped_km = shapely.transform(shipped, lambda c: np.column_stack(_to_km(c[:, 0], c[:, 1])))
    avoid = shipped_km.buffer(0.3)
    margin = shipped.buffer(2e-6, join_style="mitre")
    owners: list[str] = []
    seeds: list[np.ndarray] = []
    for k, d in enumerate(DISTRICTS):
        if d.code != SHIPPED:
            seeds.append(_district_seeds(k, centres, radii, avoid, rng))
            owners += [d.code] * d.streets
    points = np.vstack(seeds)
    frame = shapely.union_all(shapely.buffer(shapely.points(centres), radii * 1.05 + 1.0))
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame, ordered=True)
    polygons = []
    for seed, cell in zip(points, shapely.get_parts(cells), strict=True):
        clipped = shapely.transform(shapely.intersection(cell, frame), _to_degrees)
        # A 0.2 m margin keeps the rounded cut from overlapping Changning; adjacency
        # tolerates the gap.
        cut = shapely.set_precision(shapely.difference(clipped, margin), 1e-6)
        parts = shapely.get_parts(cut)
        at = shapely.points(_to_degrees(seed[None, :]))[0]
        polygons.append(parts[np.argmin(shapely.distance(parts, at))])
    return owners, polygons


def _age_table(codes: list[str], totals: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    shares = AGE_SHARES[None, :] * rng.uniform(0.9, 1.1, (len(codes), len(AGE_GROUPS)))
    counts = np.floor(shares / shares.sum(axis=1, keepdims=True) * totals[:, None]).astype(int)
    counts[:, 3] += totals - counts.sum(axis=1)  # the remainder goes to the largest group
    return pd.DataFrame(
        {
            "street_code": pd.Series(np.repeat(codes, len(AGE_GROUPS)), dtype="str"),
            "age_group": pd.Series(np.tile(AGE_GROUPS, len(codes)), dtype="str"),
            "population": counts.ravel().astype("int64"),
        }
    )


def _facilities(area: AreaSet, rng: np.random.Generator) -> pd.DataFrame:
    """Per district 2-4 hospitals, then one community health service centre per street."""
    streets = area.streets
    rows: list[tuple[object, ...]] = []
    for d in DISTRICTS:
        mine = streets[streets["street_code"].str.startswith(d.code)]
        picks = [0, *sorted(rng.choice(np.arange(1, len(HOSPITALS)), rng.integers(1, 4), replace=False))]  # fmt: skip
        weights = mine["population"].to_numpy(dtype=float)
        at = rng.choice(mine["street_code"].to_numpy(), size=len(picks), p=weights / weights.sum())
        for p, code in zip(picks, at, strict=True):
            level, kind, zh, en, depts, weight = HOSPITALS[p]
            rows.append((f"{d.name_zh}{zh}", f"{d.name_en} {en}", level, kind, code, depts, weight))
        for code, zh, en in mine[["street_code", "name_zh", "name_en"]].itertuples(index=False):
            rows.append((f"{zh}社区卫生服务中心", f"{en} Community Health Service Centre",
                         "chsc", "community", code, "GEN;PED", 2.0))  # fmt: skip
    table = pd.DataFrame(
        rows,
        columns=["name_zh", "name_en", "level", "kind", "street_code", "departments", "weight"],
    )
    lat, lon = area.sample_points(table["street_code"].to_numpy(), rng)
    table.insert(0, "facility_id", [f"C{i:04d}" for i in range(1, len(table) + 1)])
    table.insert(6, "lat", np.round(lat, 6))
    table.insert(7, "lon", np.round(lon, 6))
    return table.astype({c: "str" for c in ("facility_id", "name_zh", "name_en", "level", "kind", "street_code", "departments")})  # fmt: skip


def _gazetteer(streets: pd.DataFrame, changning: pd.DataFrame) -> pd.DataFrame:
    """Changning's gazetteer plus, per synthetic street, its name, two roads and a compound."""
    synthetic = streets[~streets["street_code"].str.startswith(SHIPPED)]
    rows = []
    for code, name in synthetic[["street_code", "name_zh"]].itertuples(index=False):
        district, number = name.split("第")[0].removesuffix("区"), int(code[6:9])
        rows += [(code, "street", name), (code, "road", f"{district}{number}路"),
                 (code, "road", f"{district}{number}支路"), (code, "compound", f"{district}{number}村")]  # fmt: skip
    extra = pd.DataFrame(rows, columns=["street_code", "kind", "name_zh"], dtype="str")
    extra["number_from"] = pd.array([pd.NA] * len(extra), dtype="Int64")
    extra["number_to"] = pd.array([pd.NA] * len(extra), dtype="Int64")
    return pd.concat([changning, extra], ignore_index=True)


def build_city(seed: int = 0) -> AreaSet:
    """Build and validate the synthetic city (see the module docstring).

    Parameters
    ----------
    seed : int
        Seed of geometry jitter, street populations, age structure and facilities.

    Returns
    -------
    AreaSet
        Named ``city``; 215 streets sorted by code, Changning's as shipped.
    """
    rng = np.random.default_rng(seed)
    shipped = load_area_set("changning")
    owners, polygons = _synthetic_polygons(shipped.streets, rng)
    codes, names_zh, names_en, totals = [], [], [], []
    for d in DISTRICTS:
        if d.code == SHIPPED:
            continue
        share = rng.gamma(4.0, size=d.streets)
        pop = np.floor(share / share.sum() * d.population).astype(int)
        pop[np.argmax(pop)] += d.population - pop.sum()
        for i in range(d.streets):
            codes.append(f"{d.code}{i + 1:03d}000")
            names_zh.append(f"{d.name_zh}第{i + 1}街道")
            names_en.append(f"{d.name_en} Street {i + 1}")
        totals.append(pop)
    if owners != [c[:6] for c in codes]:
        raise RuntimeError("synthetic polygons and codes are out of step")
    synthetic = gpd.GeoDataFrame(
        {
            "street_code": pd.Series(codes, dtype="str"),
            "name_zh": pd.Series(names_zh, dtype="str"),
            "name_en": pd.Series(names_en, dtype="str"),
            "population": np.concatenate(totals).astype("int64"),
        },
        geometry=polygons,
        crs=GEOGRAPHIC_CRS,
    )
    streets = pd.concat([shipped.streets, synthetic], ignore_index=True)
    streets = gpd.GeoDataFrame(streets, geometry="geometry", crs=GEOGRAPHIC_CRS)
    streets = streets.sort_values("street_code", ignore_index=True)
    population = pd.concat(
        [shipped.population, _age_table(codes, np.concatenate(totals), rng)], ignore_index=True
    ).sort_values(["street_code"], kind="stable", ignore_index=True)
    gazetteer = _gazetteer(streets, shipped.gazetteer)
    source = f"synthetic city (seed={seed})"
    validate_streets(streets, source)
    validate_population(population, streets, source)
    validate_gazetteer(gazetteer, streets, source)
    bare = AreaSet("city", streets, population, shipped.facilities.iloc[:0], gazetteer)
    facilities = _facilities(bare, rng)
    validate_facilities(facilities, streets, source)
    return AreaSet("city", streets, population, facilities, gazetteer)
