"""The tables of an area set: their columns, vocabularies and validation.

Every check raises :class:`ValueError` whose message starts with the source of the table
(a file path, or a label such as ``synthetic city (seed=0)``) and names the problem and
the offending codes, so a bad boundary file is fixed in one go.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

AGE_GROUPS: tuple[str, ...] = ("0-4", "5-14", "15-24", "25-59", "60+")
"""Age groups of population and visit counts; lower bounds 0, 5, 15, 25 and 60 years."""

FACILITY_LEVELS: tuple[str, ...] = ("tertiary", "secondary", "chsc", "chss")
"""Hospital grades; ``chsc`` is a community health service centre (社区卫生服务中心),
``chss`` a community health service station (社区卫生服务站)."""

FACILITY_KINDS: tuple[str, ...] = ("general", "paediatric", "maternal_child", "tcm", "community")
DEPARTMENTS: tuple[str, ...] = ("GEN", "PED", "EMR", "FEV", "DER", "OPH", "GI")
"""General, paediatrics, emergency, fever clinic, dermatology, ophthalmology, gastroenterology."""

GAZETTEER_KINDS: tuple[str, ...] = ("road", "compound", "street")

STREET_COLUMNS: tuple[str, ...] = ("street_code", "name_zh", "name_en", "population", "geometry")
POPULATION_COLUMNS: tuple[str, ...] = ("street_code", "age_group", "population")
FACILITY_COLUMNS: tuple[str, ...] = (
    "facility_id", "name_zh", "name_en", "level", "kind", "street_code",
    "lat", "lon", "departments", "weight",
)  # fmt: skip
GAZETTEER_COLUMNS: tuple[str, ...] = (
    "street_code", "kind", "name_zh", "number_from", "number_to",
)  # fmt: skip

OVERLAP_TOLERANCE_DEG2 = 1e-9
"""Shared area (square degrees, about 10 m²) above which two streets overlap."""

_CODE = r"^\d{12}$"


def _fail(source: str, problem: str, items: Sequence[object] = ()) -> None:
    shown = ", ".join(str(i) for i in list(items)[:10])
    more = f" (+{len(items) - 10} more)" if len(items) > 10 else ""
    raise ValueError(f"{source}: {problem}" + (f": {shown}{more}" if shown else ""))


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        _fail(source, "missing columns", missing)


def _require_integers(values: pd.Series, source: str, what: str) -> None:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | (numbers != np.floor(numbers))
    if bad.any():
        _fail(source, f"{what} must be whole numbers", values[bad].tolist())


def validate_streets(streets: gpd.GeoDataFrame, source: str) -> None:
    """Check codes, names, population and geometry of the streets table.

    Parameters
    ----------
    streets : geopandas.GeoDataFrame
        One row per street with :data:`STREET_COLUMNS`.
    source : str
        Where the table came from, used in error messages.

    Raises
    ------
    ValueError
        On an unknown CRS, malformed or duplicate codes, missing names, a population that is
        not a positive whole number, or a geometry that is missing, empty, not a polygon,
        invalid or overlapping another street.
    """
    _require_columns(streets, STREET_COLUMNS, source)
    if streets.crs is None:
        _fail(source, "coordinate reference system unknown (expected EPSG:4326 lon/lat)")
    if streets.empty:
        _fail(source, "no streets")
    codes = streets["street_code"].astype("str")
    bad = ~codes.str.fullmatch(_CODE)
    if bad.any():
        _fail(source, "street_code must be a 12-digit string", codes[bad].tolist())
    dup = codes[codes.duplicated()]
    if not dup.empty:
        _fail(source, "duplicate street_code", sorted(set(dup)))
    for column in ("name_zh", "name_en"):
        blank = streets[column].isna() | (streets[column].astype("str").str.strip() == "")
        if blank.any():
            _fail(source, f"{column} missing", codes[blank].tolist())
    _require_integers(streets["population"], source, "population")
    low = pd.to_numeric(streets["population"]) <= 0
    if low.any():
        _fail(source, "population must be positive", codes[low].tolist())
    geoms = streets.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        _fail(source, "geometry missing or empty", codes[missing].tolist())
    kind = shapely.get_type_id(geoms)
    if not np.isin(kind, (3, 6)).all():  # Polygon, MultiPolygon
        _fail(source, "geometry must be a Polygon or MultiPolygon", codes[~np.isin(kind, (3, 6))])
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        reasons = [f"{c} ({r})" for c, r in zip(codes[invalid], shapely.is_valid_reason(geoms[invalid]), strict=True)]  # fmt: skip
        _fail(source, "invalid geometry", reasons)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    over = shared > OVERLAP_TOLERANCE_DEG2
    if over.any():
        names = [f"{codes.iloc[a]}/{codes.iloc[b]}" for a, b in zip(left[over], right[over], strict=True)]  # fmt: skip
        _fail(source, "streets overlap", names)


def validate_population(population: pd.DataFrame, streets: pd.DataFrame, source: str) -> None:
    """Check that every street has each age group once and that they add up.

    Parameters
    ----------
    population : pandas.DataFrame
        ``street_code, age_group, population``.
    streets : pandas.DataFrame
        The validated streets table (``street_code``, ``population``).
    source : str
        Where the population table came from, used in error messages.

    Raises
    ------
    ValueError
        On unknown codes or age groups, a missing or repeated (street, age group), counts
        that are negative or not whole, or age groups not summing to the street population.
    """
    _require_columns(population, POPULATION_COLUMNS, source)
    codes = set(streets["street_code"])
    unknown = sorted(set(population["street_code"]) - codes)
    if unknown:
        _fail(source, "street_code not among the streets", unknown)
    groups = set(population["age_group"].astype("str"))
    if groups - set(AGE_GROUPS):
        _fail(source, f"age_group must be one of {', '.join(AGE_GROUPS)}", sorted(groups - set(AGE_GROUPS)))  # fmt: skip
    _require_integers(population["population"], source, "population")
    if (pd.to_numeric(population["population"]) < 0).any():
        _fail(source, "population must not be negative")
    keys = population[["street_code", "age_group"]].astype("str").agg(" ".join, axis=1)
    if keys.duplicated().any():
        _fail(source, "repeated (street_code, age_group)", sorted(set(keys[keys.duplicated()])))
    counts = population.groupby("street_code")["age_group"].count()
    incomplete = sorted(set(codes) - set(counts[counts == len(AGE_GROUPS)].index))
    if incomplete:
        _fail(source, "streets without all age groups", incomplete)
    total = population.groupby("street_code")["population"].sum()
    expected = streets.set_index("street_code")["population"]
    off = expected.index[total.reindex(expected.index).to_numpy() != expected.to_numpy()]
    if len(off):
        _fail(source, "age groups do not sum to the street population", list(off))


def validate_facilities(facilities: pd.DataFrame, streets: gpd.GeoDataFrame, source: str) -> None:
    """Check identifiers, vocabularies and that each facility lies in its street.

    Parameters
    ----------
    facilities : pandas.DataFrame
        One row per facility with :data:`FACILITY_COLUMNS`.
    streets : geopandas.GeoDataFrame
        The validated streets table, EPSG:4326.
    source : str
        Where the facilities table came from, used in error messages.

    Raises
    ------
    ValueError
        On a repeated or blank ``facility_id``, a level, kind or department outside the
        vocabularies, a weight that is not positive, an unknown street, or a location
        outside the facility's street polygon.
    """
    _require_columns(facilities, FACILITY_COLUMNS, source)
    ids = facilities["facility_id"].astype("str")
    if facilities["facility_id"].isna().any() or (ids.str.strip() == "").any():
        _fail(source, "facility_id missing")
    if ids.duplicated().any():
        _fail(source, "duplicate facility_id", sorted(set(ids[ids.duplicated()])))
    for column, allowed in (("level", FACILITY_LEVELS), ("kind", FACILITY_KINDS)):
        bad = ~facilities[column].isin(allowed)
        if bad.any():
            _fail(source, f"{column} must be one of {'|'.join(allowed)}", ids[bad].tolist())
    depts = facilities["departments"].fillna("").astype("str").str.split(";")
    bad = depts.map(lambda d: not d or not set(d) <= set(DEPARTMENTS))
    if bad.any():
        _fail(source, f"departments must be ';'-separated from {' '.join(DEPARTMENTS)}", ids[bad].tolist())  # fmt: skip
    weight = pd.to_numeric(facilities["weight"], errors="coerce")
    if (weight.isna() | (weight <= 0)).any():
        _fail(source, "weight must be a positive number", ids[weight.isna() | (weight <= 0)].tolist())  # fmt: skip
    shapes = streets.set_index("street_code").geometry
    known = facilities["street_code"].isin(shapes.index)
    if not known.all():
        _fail(source, "street_code not among the streets", ids[~known].tolist())
    lat = pd.to_numeric(facilities["lat"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(facilities["lon"], errors="coerce").to_numpy(dtype=float)
    polygons = shapes.loc[facilities["street_code"]].to_numpy()
    inside = shapely.intersects_xy(polygons, lon, lat)
    if not inside.all():
        _fail(source, "facility outside its street polygon", ids[~inside].tolist())


def validate_gazetteer(gazetteer: pd.DataFrame, streets: pd.DataFrame, source: str) -> None:
    """Check that each gazetteer name points to one street, or splits by house number.

    Parameters
    ----------
    gazetteer : pandas.DataFrame
        ``street_code, kind, name_zh, number_from, number_to``.
    streets : pandas.DataFrame
        The validated streets table (``street_code``).
    source : str
        Where the gazetteer came from, used in error messages.

    Raises
    ------
    ValueError
        On unknown codes or kinds, blank names, a half-given or reversed house-number range,
        a street or compound name listed for two streets, or a road listed for several
        streets without disjoint house-number ranges.
    """
    _require_columns(gazetteer, GAZETTEER_COLUMNS, source)
    unknown = sorted(set(gazetteer["street_code"]) - set(streets["street_code"]))
    if unknown:
        _fail(source, "street_code not among the streets", unknown)
    bad_kind = ~gazetteer["kind"].isin(GAZETTEER_KINDS)
    if bad_kind.any():
        _fail(source, f"kind must be one of {'|'.join(GAZETTEER_KINDS)}", sorted(set(gazetteer["kind"][bad_kind].astype("str"))))  # fmt: skip
    names = gazetteer["name_zh"].fillna("").astype("str").str.strip()
    if (names == "").any():
        _fail(source, "name_zh missing")
    lo, hi = gazetteer["number_from"], gazetteer["number_to"]
    half = lo.isna() != hi.isna()
    if half.any():
        _fail(source, "number_from and number_to must be given together", names[half].tolist())
    if (lo.notna() & (lo > hi)).any():
        _fail(source, "number_from after number_to", names[lo.notna() & (lo > hi)].tolist())
    rows = gazetteer.assign(name_zh=names)
    where = rows.groupby("name_zh")["street_code"].nunique()
    shared = where[where > 1].index
    not_road = rows[rows["name_zh"].isin(shared) & (rows["kind"] != "road")]
    if not not_road.empty:
        _fail(source, "street or compound name listed for several streets", sorted(set(not_road["name_zh"])))  # fmt: skip
    for name, road in rows[rows["name_zh"].isin(shared)].groupby("name_zh"):
        if road["number_from"].isna().any():
            _fail(source, "road crossing streets needs house-number ranges in every row", [name])  # fmt: skip
        spans = road.sort_values("number_from")
        if (spans["number_from"].to_numpy()[1:] <= spans["number_to"].to_numpy()[:-1]).any():
            _fail(source, "house-number ranges of a road overlap", [name])
