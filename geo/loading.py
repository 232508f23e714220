"""Area sets from boundary files: read, validate, split population by age, register.

A district or city that is not shipped comes as a boundary file (GeoJSON, GeoPackage or
Shapefile, read with geopandas/pyogrio) holding one polygon per street with its 12-digit
code, Chinese name, optionally an English name, and its resident population.
:func:`read_area_set` turns it into a validated :class:`~geo.areas.AreaSet`;
:func:`register_area_set` writes that set under ``$SENTINEL_HOME/geo/<name>/`` in the
layout of ``geo/data/changning/``, where ``load_area_set(name, home)`` finds it.

The command (wired in ``sentinel/cli.py``) is::

    sentinel geo load FILE --name NAME --code-field F --name-field F
        [--name-en-field F] --population-field F [--age-file CSV]
        [--layer LAYER] [--make-valid] [--force]

It calls ``register_area_set(settings.home, NAME, FILE, code_field=…, name_field=…,
name_en_field=…, population_field=…, age_file=…, layer=…, make_valid=…,
overwrite=force)``, prints ``describe_area_set(load_area_set(NAME, settings.home))`` and
the returned folder, and turns :class:`AreaSetFileError` (a ``ValueError``) into exit 2
with its one-line message. ``--make-valid`` repairs invalid polygons instead of rejecting
them; ``--force`` replaces a set registered under the same name.

What a registered set holds, and its limits:

- ``streets.geojson``: code, names and population from the file, polygons in EPSG:4326
  (reprojected from the file's CRS). Without an English-name field ``name_en`` repeats
  the Chinese name.
- ``population.csv``: population by street and age group, from ``--age-file`` (columns
  ``street_code, age_group, population``, groups ``0-4, 5-14, 15-24, 25-59, 60+`` adding
  up to each street's population) or else split by :data:`DEFAULT_AGE_SHARES`, an
  APPROXIMATE Shanghai structure (see there), with the largest-remainder rule.
- ``facilities.csv``: empty (header only); facilities are not part of a boundary file.
- ``gazetteer.csv``: one ``street`` entry per street whose Chinese name is unique in
  the set, so addresses naming the street match; no roads or compounds.
- ``source.json``: where the set came from (file, layer, fields, age structure).

Distances use the set's :attr:`~geo.areas.AreaSet.metric_crs`: the UTM zone of its
centroid (EPSG:32651, UTM 51N, for Shanghai). Adjacency, centroids in km and
point-in-polygon are the :class:`~geo.areas.AreaSet` methods.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from numpy.typing import ArrayLike

from geo.areas import (
    DATA_DIR,
    GEOGRAPHIC_CRS,
    NAME_PATTERN,
    REGISTERED_DIR,
    AreaSet,
    _load_folder,
)
from geo.tables import (
    AGE_GROUPS,
    FACILITY_COLUMNS,
    GAZETTEER_COLUMNS,
    STREET_COLUMNS,
    validate_facilities,
    validate_gazetteer,
    validate_population,
    validate_streets,
)

__all__ = [
    "DEFAULT_AGE_SHARES",
    "AreaSetFileError",
    "describe_area_set",
    "read_age_file",
    "read_area_set",
    "read_boundaries",
    "register_area_set",
    "split_population_by_age",
    "street_gazetteer",
    "write_area_set",
]

DEFAULT_AGE_SHARES: Mapping[str, float] = {
    "0-4": 0.030,
    "5-14": 0.068,
    "15-24": 0.085,
    "25-59": 0.583,
    "60+": 0.234,
}
"""Share of residents per age group when the boundary file brings no age structure.

APPROXIMATE: Shanghai's 2020 census gives 9.8 % aged 0-14, 66.8 % aged 15-59 and 23.4 %
aged 60+; the split of 0-14 into 0-4/5-14 and of 15-59 into 15-24/25-59 is our estimate,
not an official figure. Pass an age file for real numbers.
"""

_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon


class AreaSetFileError(ValueError):
    """A boundary, age or area-set file that cannot be used; the message names the file."""


def _fail(source: object, problem: str) -> AreaSetFileError:
    return AreaSetFileError(f"{source}: {problem}")


def _code_strings(values: pd.Series, source: Path, field: str) -> pd.Series:
    """Codes as strings; integer-valued numbers (GeoPackage, DBF) lose their ``.0``."""
    if values.isna().any():
        raise _fail(source, f"code field {field!r} missing in {int(values.isna().sum())} features")  # fmt: skip
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float)
        if not np.all(numbers == np.floor(numbers)):
            raise _fail(source, f"code field {field!r} holds non-integer numbers")
        return pd.Series([str(int(v)) for v in values], index=values.index, dtype="str")
    return values.astype("str").str.strip()


def _text(values: pd.Series) -> pd.Series:
    """Stripped strings; missing values stay missing (validation names them)."""
    return values.astype("str").str.strip().where(values.notna())


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of a repaired geometry (drops collapsed lines and points)."""
    parts = shapely.get_parts(geom)
    keep = parts[np.isin(shapely.get_type_id(parts), _POLYGONAL)]
    if keep.size == 0:
        return shapely.Polygon()
    return keep[0] if keep.size == 1 else shapely.union_all(keep)


def read_boundaries(
    path: Path,
    *,
    code_field: str,
    name_field: str,
    population_field: str,
    name_en_field: str | None = None,
    layer: str | None = None,
    make_valid: bool = False,
) -> gpd.GeoDataFrame:
    """Read and validate the streets of a boundary file.

    Parameters
    ----------
    path : Path
        GeoJSON, GeoPackage or Shapefile (``.shp`` with its ``.shx``, ``.dbf``, ``.prj``).
    code_field, name_field, population_field : str
        Fields holding the 12-digit street code, the Chinese name and the resident
        population (a positive whole number).
    name_en_field : str, optional
        Field holding the English name; without it ``name_en`` repeats the Chinese name.
    layer : str, optional
        Layer to read from a file with several (a GeoPackage); required then.
    make_valid : bool
        Repair invalid polygons with ``shapely.make_valid`` (structure method, collapsed
        parts dropped) instead of rejecting the file. Off by default: a repaired boundary
        is a guess, so it must be asked for.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`~geo.tables.STREET_COLUMNS` in EPSG:4326, sorted by ``street_code``.

    Raises
    ------
    AreaSetFileError
        Naming the file and the problem: unreadable file, several layers and none chosen,
        no features, unknown CRS, a missing field, missing or non-numeric codes or
        populations, or any check of :func:`geo.tables.validate_streets` (12-digit unique
        codes, names, positive populations, non-empty valid non-overlapping polygons).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        layers = pyogrio.list_layers(path)
        if layer is None and len(layers) > 1:
            listed = ", ".join(str(n) for n in layers[:, 0])
            raise _fail(path, f"several layers ({listed}); choose one with --layer")
        frame = gpd.read_file(path, engine="pyogrio", layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise _fail(path, f"cannot be read as a boundary file ({exc})") from exc
    if frame.empty:
        raise _fail(path, "no features")
    if frame.crs is None:
        raise _fail(path, "coordinate reference system unknown (a Shapefile needs its .prj)")
    fields = [code_field, name_field, population_field, *([name_en_field] if name_en_field else [])]  # fmt: skip
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        have = ", ".join(c for c in frame.columns if c != frame.geometry.name)
        raise _fail(path, f"missing field {', '.join(map(repr, missing))}; fields in the file: {have}")  # fmt: skip
    codes = _code_strings(frame[code_field], path, code_field)
    population = pd.to_numeric(frame[population_field], errors="coerce")
    if population.isna().any():
        raise _fail(path, f"population field {population_field!r} missing or not a number: {', '.join(codes[population.isna()].head(10))}")  # fmt: skip
    geoms = shapely.force_2d(frame.geometry.to_numpy())
    if make_valid:
        broken = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
        repaired = shapely.make_valid(geoms[broken], method="structure", keep_collapsed=False)
        geoms[broken] = [_polygonal(g) for g in repaired]
    names = _text(frame[name_field])
    names_en = _text(frame[name_en_field]) if name_en_field else names
    streets = gpd.GeoDataFrame(
        {
            "street_code": codes.to_numpy(),
            "name_zh": names.to_numpy(),
            "name_en": names_en.to_numpy(),
            "population": population.to_numpy(),
        },
        geometry=gpd.GeoSeries(geoms, crs=frame.crs).to_crs(GEOGRAPHIC_CRS).to_numpy(),
        crs=GEOGRAPHIC_CRS,
    )
    shown = streets.geometry.to_numpy()
    box = shapely.bounds(shown[~(shapely.is_missing(shown) | shapely.is_empty(shown))])
    if not ((np.abs(box[:, [0, 2]]) <= 180).all() and (np.abs(box[:, [1, 3]]) <= 90).all()):
        raise _fail(path, f"coordinates not lon/lat after reprojection from {frame.crs.to_string()} (wrong CRS in the file?)")  # fmt: skip
    try:
        validate_streets(streets, str(path))
    except ValueError as exc:
        raise AreaSetFileError(str(exc)) from exc
    streets["population"] = streets["population"].astype("int64")
    return streets[list(STREET_COLUMNS)].sort_values("street_code", ignore_index=True)


def split_population_by_age(
    street_codes: ArrayLike,
    population: ArrayLike,
    shares: Mapping[str, float] = DEFAULT_AGE_SHARES,
) -> pd.DataFrame:
    """Split each street's population over the age groups by fixed shares, in whole people.

    Parameters
    ----------
    street_codes : array_like of str
        One code per street.
    population : array_like of int
        Residents of each street (non-negative whole numbers).
    shares : mapping of str to float
        Share of each of :data:`~geo.tables.AGE_GROUPS` (all of them, non-negative, any
        positive total: they are normalised to sum to one).

    Returns
    -------
    pandas.DataFrame
        ``street_code, age_group, population``, street by street in the given order, age
        groups in :data:`~geo.tables.AGE_GROUPS` order; each street's groups add up to its
        population.

    Notes
    -----
    Largest remainder (Hamilton) apportionment: with quota :math:`q_g = P s_g / \\sum s`,
    group :math:`g` gets :math:`\\lfloor q_g \\rfloor`, and the :math:`P - \\sum_g \\lfloor
    q_g \\rfloor` people left go one each to the groups with the largest fractional parts
    (ties to the younger group). Every count is within one person of its quota.
    """
    if set(shares) != set(AGE_GROUPS):
        raise ValueError(f"shares must give exactly the age groups {', '.join(AGE_GROUPS)}; got {', '.join(shares)}")  # fmt: skip
    share = np.array([shares[g] for g in AGE_GROUPS], dtype=float)
    if not np.all(np.isfinite(share)) or (share < 0).any() or share.sum() <= 0:
        raise ValueError(f"shares must be non-negative with a positive total: {dict(shares)}")
    codes = np.asarray(street_codes, dtype=object).ravel()
    total = np.asarray(population).ravel()
    if total.shape != codes.shape:
        raise ValueError(f"{codes.size} street codes but {total.size} populations")
    if (total < 0).any() or not np.all(total == np.floor(total)):
        raise ValueError("population must be non-negative whole numbers")
    total = total.astype(np.int64)
    quota = total[:, None] * (share / share.sum())[None, :]
    counts = np.floor(quota).astype(np.int64)
    left = total - counts.sum(axis=1)
    order = np.argsort(-(quota - counts), axis=1, kind="stable")  # largest remainder first
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(len(AGE_GROUPS))[None, :], axis=1)
    counts += rank < left[:, None]
    return pd.DataFrame(
        {
            "street_code": pd.Series(np.repeat(codes, len(AGE_GROUPS)), dtype="str"),
            "age_group": pd.Series(np.tile(AGE_GROUPS, codes.size), dtype="str"),
            "population": counts.ravel(),
        }
    )


def read_age_file(path: Path, streets: pd.DataFrame) -> pd.DataFrame:
    """Read and validate population by street and age group from a CSV file.

    Parameters
    ----------
    path : Path
        UTF-8 CSV with ``street_code, age_group, population``; every street of
        ``streets`` with each of :data:`~geo.tables.AGE_GROUPS` once, adding up to its
        population.
    streets : pandas.DataFrame
        The validated streets (``street_code, population``).

    Returns
    -------
    pandas.DataFrame
        ``street_code, age_group, population`` sorted by street and age group.

    Raises
    ------
    AreaSetFileError
        If the file is missing or unreadable, or fails
        :func:`geo.tables.validate_population`.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        table = pd.read_csv(path, encoding="utf-8", dtype={"street_code": "str", "age_group": "str"})  # fmt: skip
        validate_population(table, streets, str(path))
    except (ValueError, pd.errors.ParserError) as exc:
        raise AreaSetFileError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from exc  # fmt: skip
    table = table[["street_code", "age_group", "population"]].copy()
    table["population"] = table["population"].astype("int64")
    rank = table["age_group"].map({g: i for i, g in enumerate(AGE_GROUPS)})
    return table.assign(_rank=rank).sort_values(["street_code", "_rank"], ignore_index=True).drop(columns="_rank")  # fmt: skip


def street_gazetteer(streets: pd.DataFrame) -> pd.DataFrame:
    """A gazetteer with one ``street`` entry per street whose Chinese name is unique.

    Parameters
    ----------
    streets : pandas.DataFrame
        ``street_code, name_zh``.

    Returns
    -------
    pandas.DataFrame
        :data:`~geo.tables.GAZETTEER_COLUMNS`; names shared by several streets (common in
        a whole city) are left out, since a name must point to one street.
    """
    names = streets["name_zh"].astype("str")
    unique = streets[~names.duplicated(keep=False)]
    return pd.DataFrame(
        {
            "street_code": unique["street_code"].astype("str").to_numpy(),
            "kind": "street",
            "name_zh": unique["name_zh"].astype("str").to_numpy(),
            "number_from": pd.array([pd.NA] * len(unique), dtype="Int64"),
            "number_to": pd.array([pd.NA] * len(unique), dtype="Int64"),
        },
        columns=list(GAZETTEER_COLUMNS),
    )


def _empty_facilities() -> pd.DataFrame:
    numeric = {"lat", "lon", "weight"}
    return pd.DataFrame(
        {c: pd.Series([], dtype="float64" if c in numeric else "str") for c in FACILITY_COLUMNS}
    )


def read_area_set(
    source: Path,
    *,
    name: str,
    code_field: str,
    name_field: str,
    population_field: str,
    name_en_field: str | None = None,
    age_file: Path | None = None,
    layer: str | None = None,
    make_valid: bool = False,
) -> AreaSet:
    """Build a validated area set from a boundary file, without registering it.

    Parameters
    ----------
    source : Path
        The boundary file (see :func:`read_boundaries`).
    name : str
        Name of the set.
    code_field, name_field, population_field, name_en_field, layer, make_valid
        As in :func:`read_boundaries`.
    age_file : Path, optional
        Population by street and age group (:func:`read_age_file`); without it the
        population is split by :data:`DEFAULT_AGE_SHARES`.

    Returns
    -------
    AreaSet
        With empty facilities and a street-name gazetteer (:func:`street_gazetteer`).

    Raises
    ------
    AreaSetFileError
        If a file fails to read or validate; the message names the file and the problem.
    """
    streets = read_boundaries(
        source,
        code_field=code_field,
        name_field=name_field,
        population_field=population_field,
        name_en_field=name_en_field,
        layer=layer,
        make_valid=make_valid,
    )
    if age_file is not None:
        population = read_age_file(age_file, streets)
    else:
        population = split_population_by_age(streets["street_code"], streets["population"])
    facilities, gazetteer = _empty_facilities(), street_gazetteer(streets)
    validate_facilities(facilities, streets, f"{source} (facilities)")
    validate_gazetteer(gazetteer, streets, f"{source} (gazetteer)")
    return AreaSet(name, streets, population, facilities, gazetteer)


def write_area_set(
    area: AreaSet, folder: Path, provenance: Mapping[str, object] | None = None
) -> Path:
    """Write an area set in the layout of ``geo/data/changning/``.

    Parameters
    ----------
    area : AreaSet
        The set to write.
    folder : Path
        Created if needed; ``streets.geojson``, ``population.csv``, ``facilities.csv``,
        ``gazetteer.csv`` and ``source.json`` are written (replaced) in it.
    provenance : mapping, optional
        Extra entries for ``source.json`` (file, fields, age structure…).

    Returns
    -------
    Path
        ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    streets = area.streets[list(STREET_COLUMNS)]
    streets.to_file(folder / "streets.geojson", driver="GeoJSON", engine="pyogrio")
    area.population.to_csv(folder / "population.csv", index=False, encoding="utf-8")
    area.facilities.to_csv(folder / "facilities.csv", index=False, encoding="utf-8")
    area.gazetteer.to_csv(folder / "gazetteer.csv", index=False, encoding="utf-8")
    about = {
        "name": area.name,
        "streets": len(streets),
        "population": int(streets["population"].sum()),
        "metric_crs": area.metric_crs,
        **(provenance or {}),
    }
    text = json.dumps(about, ensure_ascii=False, indent=2, default=str)
    (folder / "source.json").write_text(text + "\n", encoding="utf-8")
    return folder


def register_area_set(
    home: Path,
    name: str,
    source: Path,
    *,
    code_field: str,
    name_field: str,
    population_field: str,
    name_en_field: str | None = None,
    age_file: Path | None = None,
    layer: str | None = None,
    make_valid: bool = False,
    overwrite: bool = False,
) -> Path:
    """Validate a boundary file and register it as area set ``name`` under ``home``.

    ``sentinel geo load FILE --name NAME --code-field F --name-field F [--name-en-field F]
    --population-field F [--age-file CSV] [--layer L] [--make-valid] [--force]``.

    Parameters
    ----------
    home : Path
        The Sentinel home; the set goes to ``home / "geo" / name``.
    name : str
        Letters, digits, ``_`` and ``-``; not the name of a shipped set (those load first).
    source : Path
        The boundary file.
    code_field, name_field, population_field, name_en_field, age_file, layer, make_valid
        As in :func:`read_area_set`.
    overwrite : bool
        Replace a set already registered under ``name`` (``--force``).

    Returns
    -------
    Path
        The folder written; ``load_area_set(name, home)`` loads it.

    Raises
    ------
    AreaSetFileError
        On a bad name, an existing set without ``overwrite``, or a file that fails to read
        or validate. Nothing is written then.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise AreaSetFileError(f"area set name {name!r}: use letters, digits, '_' and '-'")
    if (DATA_DIR / name).is_dir():
        raise AreaSetFileError(f"area set name {name!r} is taken by a shipped set; choose another")  # fmt: skip
    registry = Path(home) / REGISTERED_DIR
    target = registry / name
    if target.exists() and not overwrite:
        raise AreaSetFileError(f"{target}: area set {name!r} already registered (--force replaces it)")  # fmt: skip
    area = read_area_set(
        source,
        name=name,
        code_field=code_field,
        name_field=name_field,
        population_field=population_field,
        name_en_field=name_en_field,
        age_file=age_file,
        layer=layer,
        make_valid=make_valid,
    )
    fields = {"code": code_field, "name_zh": name_field, "name_en": name_en_field, "population": population_field}  # fmt: skip
    provenance = {
        "source": str(Path(source).resolve()),
        "layer": layer,
        "fields": fields,
        "made_valid": make_valid,
        "age_structure": str(Path(age_file).resolve())
        if age_file
        else {"default_shares": dict(DEFAULT_AGE_SHARES)},
    }
    # Write beside the target and swap in, so a failure never leaves half a set behind.
    staging = registry / f".{name}.{uuid.uuid4().hex[:8]}"
    write_area_set(area, staging, provenance)
    try:
        _check_written(name, staging, area)
        old = registry / f".{name}.old.{uuid.uuid4().hex[:8]}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_written(name: str, folder: Path, area: AreaSet) -> None:
    """Re-read what was written: the registered set must load to the same streets."""
    again = _load_folder(name, folder)
    if again.codes != area.codes or not np.array_equal(
        again.streets["population"].to_numpy(), area.streets["population"].to_numpy()
    ):
        raise AreaSetFileError(f"{folder}: written area set does not read back the same")


def describe_area_set(area: AreaSet) -> str:
    """One line for the command's output: name, streets, population, metric CRS."""
    return (
        f"area set {area.name}: {len(area.codes)} streets, "
        f"population {int(area.streets['population'].sum()):,}, metric CRS {area.metric_crs}"
    )
