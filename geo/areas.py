"""Area sets: streets (sub-districts) with boundaries, population, facilities and gazetteer.

An area set is everything Sentinel knows about a territory: the 12-digit street codes
with names, boundaries and population by age group, the health facilities, and the
gazetteer used to match addresses. The Changning district ships with the project
(approximate boundaries, see ``geo/README.md``); :func:`build_city_area_set` makes a
synthetic 215-street city for benchmarks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import box

DATA = Path(__file__).parent / "data"
AGE_GROUPS: tuple[str, ...] = ("0-4", "5-14", "15-24", "25-59", "60+")
AGE_LOWER = np.array([0, 5, 15, 25, 60])
METRIC_CRS = "EPSG:32651"  # UTM zone 51N: metres, right for Shanghai (120°E–126°E)
LEVELS = ("tertiary", "secondary", "chsc", "chss")
FACILITY_COLUMNS = (
    "facility_id",
    "name_zh",
    "name_en",
    "level",
    "kind",
    "street_code",
    "lat",
    "lon",
    "departments",
    "weight",
)


def age_group_of(age_years: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Age group label (0-4, 5-14, 15-24, 25-59, 60+) of each age in whole years.

    Negative ages give an empty string.
    """
    ages = np.asarray(age_years)
    idx = np.searchsorted(AGE_LOWER, ages, side="right") - 1
    labels = np.array([*AGE_GROUPS, ""])
    return labels[np.where(idx < 0, len(AGE_GROUPS), idx)]


@dataclass(frozen=True, eq=False)
class AreaSet:
    """Streets of a territory and what goes with them.

    Attributes
    ----------
    name : str
        Name of the set (``changning``, ``city``).
    streets : GeoDataFrame
        ``street_code`` (12-digit), ``name_zh``, ``name_en``, ``population``, geometry in
        EPSG:4326, sorted by code.
    population : DataFrame
        ``street_code``, ``age_group``, ``population``; groups sum to the street's total.
    facilities : DataFrame
        Columns of :data:`FACILITY_COLUMNS`.
    gazetteer : DataFrame
        ``street_code``, ``kind`` (street|road|compound), ``name_zh``, ``number_from``,
        ``number_to`` (house-number range for roads that cross streets).
    """

    name: str
    streets: gpd.GeoDataFrame
    population: pd.DataFrame
    facilities: pd.DataFrame
    gazetteer: pd.DataFrame
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def codes(self) -> list[str]:
        """Street codes, sorted."""
        return list(self.streets["street_code"])

    def projected(self) -> gpd.GeoDataFrame:
        """Streets in a metric CRS (UTM 51N), for distances and areas."""
        if "projected" not in self._cache:
            self._cache["projected"] = self.streets.to_crs(METRIC_CRS)
        return self._cache["projected"]  # type: ignore[return-value]

    def centroids_km(self) -> pd.DataFrame:
        """``street_code``, ``x``, ``y``: centroids in kilometres (UTM 51N)."""
        c = self.projected().geometry.centroid
        return pd.DataFrame(
            {"street_code": self.codes, "x": c.x.to_numpy() / 1000, "y": c.y.to_numpy() / 1000}
        )

    def adjacency(self) -> dict[str, list[str]]:
        """Queen contiguity: streets whose boundaries share at least a point (1 m tolerance)."""
        if "adjacency" not in self._cache:
            geoms = self.projected().geometry.buffer(1.0)
            tree = shapely.STRtree(geoms.to_numpy())
            left, right = tree.query(geoms.to_numpy(), predicate="intersects")
            codes = self.codes
            result: dict[str, set[str]] = {c: set() for c in codes}
            for i, j in zip(left, right, strict=True):
                if i != j:
                    result[codes[i]].add(codes[j])
            self._cache["adjacency"] = {c: sorted(v) for c, v in result.items()}
        return self._cache["adjacency"]  # type: ignore[return-value]

    def locate(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """Street code containing each (lat, lon) point, ``None`` where outside every street."""
        lat_a, lon_a = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
        out = np.full(lat_a.shape, None, dtype=object)
        ok = np.isfinite(lat_a) & np.isfinite(lon_a)
        if not ok.any():
            return out
        points = shapely.points(lon_a[ok], lat_a[ok])
        tree = shapely.STRtree(self.streets.geometry.to_numpy())
        pt_idx, poly_idx = tree.query(points, predicate="intersects")
        codes = np.array(self.codes, dtype=object)
        found = np.full(points.shape, None, dtype=object)
        # a point on a shared border belongs to the lower code, deterministically
        order = np.lexsort((poly_idx, pt_idx))[::-1]
        found[pt_idx[order]] = codes[poly_idx[order]]
        out[ok] = found
        return out

    def sample_points(
        self, street_codes: npt.ArrayLike, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random (lat, lon) points inside each given street (rejection sampling)."""
        wanted = np.asarray(street_codes)
        lat = np.full(wanted.shape, np.nan)
        lon = np.full(wanted.shape, np.nan)
        by_code = self.streets.set_index("street_code").geometry
        for code in np.unique(wanted):
            idx = np.flatnonzero(wanted == code)
            poly = by_code[code]
            minx, miny, maxx, maxy = poly.bounds
            todo = idx
            while todo.size:
                x = rng.uniform(minx, maxx, todo.size)
                y = rng.uniform(miny, maxy, todo.size)
                inside = shapely.contains_xy(poly, x, y)
                lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
                todo = todo[~inside]
        return lat, lon


def _fail(where: Path | str, problem: str) -> ValueError:
    return ValueError(f"area set {where}: {problem}")


def validate_area_set(area: AreaSet, where: Path | str) -> AreaSet:
    """Check codes, geometries, CRS, populations and facilities; raise ``ValueError`` naming the problem."""
    s = area.streets
    if s.crs is None:
        raise _fail(where, "streets have no CRS")
    codes = s["street_code"].astype(str)
    if not codes.str.fullmatch(r"\d{12}").all():
        bad = codes[~codes.str.fullmatch(r"\d{12}")].tolist()[:3]
        raise _fail(where, f"street codes must have 12 digits: {bad}")
    if codes.duplicated().any():
        raise _fail(where, f"duplicate street codes: {codes[codes.duplicated()].tolist()[:3]}")
    if not s.geometry.is_valid.all():
        raise _fail(where, f"invalid geometry for {codes[~s.geometry.is_valid].tolist()[:3]}")
    if (s["population"] <= 0).any():
        raise _fail(where, "street populations must be positive")
    totals = area.population.groupby("street_code")["population"].sum()
    expected = s.set_index("street_code")["population"]
    if not totals.reindex(expected.index).fillna(-1).astype(int).equals(expected.astype(int)):
        raise _fail(where, "age-group populations do not sum to each street's population")
    if not set(area.population["age_group"]) <= set(AGE_GROUPS):
        raise _fail(
            where,
            f"unknown age groups {sorted(set(area.population['age_group']) - set(AGE_GROUPS))}",
        )
    fac = area.facilities
    missing = [c for c in FACILITY_COLUMNS if c not in fac.columns]
    if missing:
        raise _fail(where, f"facilities lack columns {missing}")
    if fac["facility_id"].duplicated().any():
        raise _fail(where, "duplicate facility ids")
    if not fac["level"].isin(LEVELS).all():
        raise _fail(where, f"facility levels must be one of {LEVELS}")
    located = area.locate(fac["lat"].to_numpy(), fac["lon"].to_numpy())
    wrong = fac.loc[located != fac["street_code"].to_numpy(), "facility_id"].tolist()
    if wrong:
        raise _fail(where, f"facilities outside their street: {wrong}")
    unknown = set(area.gazetteer["street_code"]) - set(codes)
    if unknown:
        raise _fail(where, f"gazetteer names unknown streets {sorted(unknown)[:3]}")
    return area


@functools.cache
def load_area_set(name: str = "changning") -> AreaSet:
    """Load a shipped area set (validated) from ``geo/data/<name>/``."""
    folder = DATA / name
    if not (folder / "streets.geojson").is_file():
        shipped = sorted(p.name for p in DATA.iterdir() if (p / "streets.geojson").is_file())
        raise ValueError(f"unknown area set {name!r}; shipped: {', '.join(shipped)}")
    streets = gpd.read_file(folder / "streets.geojson")
    streets = streets[["street_code", "name_zh", "name_en", "population", "geometry"]]
    streets = (
        streets.astype({"street_code": "str", "population": "int64"})
        .sort_values("street_code")
        .reset_index(drop=True)
    )
    population = pd.read_csv(
        folder / "population.csv", dtype={"street_code": "str", "age_group": "str"}
    )
    facilities = pd.read_csv(
        folder / "facilities.csv", dtype={"street_code": "str", "facility_id": "str"}
    )
    gazetteer = pd.read_csv(folder / "gazetteer.csv", dtype={"street_code": "str"})
    return validate_area_set(AreaSet(name, streets, population, facilities, gazetteer), folder)


CITY_DISTRICTS = (
    ("310101", "黄浦区", "Huangpu"), ("310104", "徐汇区", "Xuhui"), ("310105", "长宁区", "Changning"),
    ("310106", "静安区", "Jing'an"), ("310107", "普陀区", "Putuo"), ("310109", "虹口区", "Hongkou"),
    ("310110", "杨浦区", "Yangpu"), ("310112", "闵行区", "Minhang"), ("310113", "宝山区", "Baoshan"),
    ("310114", "嘉定区", "Jiading"), ("310115", "浦东新区", "Pudong"), ("310116", "金山区", "Jinshan"),
    ("310117", "松江区", "Songjiang"), ("310118", "青浦区", "Qingpu"), ("310120", "奉贤区", "Fengxian"),
    ("310151", "崇明区", "Chongming"),
)  # fmt: skip
CITY_STREETS = 215
CITY_POPULATION = 25_000_000


@functools.cache
def build_city_area_set(seed: int = 0) -> AreaSet:
    """A SYNTHETIC city of 16 districts and 215 streets (about 25 million residents).

    Changning keeps its 10 shipped streets; the other districts get synthetic streets on a
    grid of 2 km squares laid out west of Changning, with synthetic names, a community
    health centre per street and three hospitals per district. For benchmarks only.
    """
    base = load_area_set("changning")
    rng = np.random.default_rng([seed, 215])
    others = [d for d in CITY_DISTRICTS if d[0] != "310105"]
    per = np.full(len(others), (CITY_STREETS - len(base.codes)) // len(others))
    per[: (CITY_STREETS - len(base.codes)) - per.sum()] += 1
    rows = []
    col = 0
    for (dcode, dzh, den), n in zip(others, per, strict=True):
        for k in range(int(n)):
            x0 = 121.0 + 0.021 * (col % 40)
            y0 = 30.8 + 0.021 * (col // 40) - 0.3
            col += 1
            rows.append(
                {
                    "street_code": f"{dcode}{k + 1:03d}000",
                    "name_zh": f"{dzh}第{k + 1}街道",
                    "name_en": f"{den} Street {k + 1}",
                    "population": 0,
                    "geometry": box(x0, y0, x0 + 0.02, y0 + 0.02),
                }
            )
    synth = gpd.GeoDataFrame(rows, crs="EPSG:4326")
    remaining = CITY_POPULATION - int(base.streets["population"].sum())
    weights = rng.lognormal(0.0, 0.45, len(synth))
    pops = np.floor(weights / weights.sum() * remaining).astype(np.int64)
    pops[0] += remaining - pops.sum()
    synth["population"] = pops
    streets = (
        pd.concat([base.streets, synth], ignore_index=True)
        .sort_values("street_code")
        .reset_index(drop=True)
    )
    streets = gpd.GeoDataFrame(streets, crs="EPSG:4326")
    shares = np.array([0.035, 0.075, 0.075, 0.505, 0.31])
    pop_rows = [base.population]
    for code, total in zip(synth["street_code"], synth["population"], strict=True):
        counts = np.floor(shares * total).astype(np.int64)
        counts[3] += int(total) - counts.sum()
        pop_rows.append(
            pd.DataFrame({"street_code": code, "age_group": AGE_GROUPS, "population": counts})
        )
    population = pd.concat(pop_rows, ignore_index=True)
    fac_rows = [
        base.facilities.assign(
            facility_id="C" + base.facilities["facility_id"].str.slice(1).str.zfill(4)
        )
    ]
    n_fac = 0
    centre = synth.geometry.representative_point()
    for i, (code, name_zh) in enumerate(zip(synth["street_code"], synth["name_zh"], strict=True)):
        n_fac += 1
        p = centre.iloc[i]
        fac_rows.append(
            pd.DataFrame(
                [{"facility_id": f"C{100 + n_fac:04d}", "name_zh": f"{name_zh}社区卫生服务中心",
                  "name_en": f"Community Health Service Centre {code}", "level": "chsc", "kind": "community",
                  "street_code": code, "lat": round(p.y, 6), "lon": round(p.x, 6), "departments": "GEN;PED", "weight": 2.0}]
            )
        )  # fmt: skip
    for dcode, dzh, den in others:
        members = synth[synth["street_code"].str.startswith(dcode)].reset_index(drop=True)
        for h, (level, depts, weight) in enumerate(
            (
                ("tertiary", "GEN;PED;EMR;FEV;DER;OPH;GI", 8.0),
                ("secondary", "GEN;PED;EMR;FEV", 4.0),
                ("secondary", "GEN;EMR;FEV", 4.0),
            )
        ):
            m = members.iloc[(h * 5) % len(members)]
            p = m.geometry.centroid
            n_fac += 1
            fac_rows.append(
                pd.DataFrame(
                    [{"facility_id": f"C{100 + n_fac:04d}", "name_zh": f"{dzh}第{h + 1}人民医院",
                      "name_en": f"{den} Hospital {h + 1}", "level": level, "kind": "general",
                      "street_code": m["street_code"], "lat": round(p.y + 0.001 * h, 6), "lon": round(p.x, 6),
                      "departments": depts, "weight": weight}]
                )
            )  # fmt: skip
    facilities = pd.concat(fac_rows, ignore_index=True)
    gaz = [base.gazetteer]
    for code, name_zh in zip(synth["street_code"], synth["name_zh"], strict=True):
        gaz.append(
            pd.DataFrame(
                {"street_code": code, "kind": ["street", "road", "road", "compound"],
                 "name_zh": [name_zh, f"{name_zh}一路", f"{name_zh}二路", f"{name_zh}新村"],
                 "number_from": np.nan, "number_to": np.nan}
            )
        )  # fmt: skip
    gazetteer = pd.concat(gaz, ignore_index=True)
    return validate_area_set(
        AreaSet("city", streets, population, facilities, gazetteer), "city (synthetic)"
    )
