"""Area sets: the streets of a place with their population, facilities and gazetteer.

An :class:`AreaSet` is the one geography the pipeline works in: residence codes resolve to
its streets, counts are aggregated by its streets and age groups, and the spatial methods
use its adjacency and projected centroids. The shipped set ``changning`` lives under
``geo/data/changning/``; its polygons and populations are APPROXIMATE (see the README).
Other sets are registered from boundary files under ``$SENTINEL_HOME/geo/<name>/`` in the
same layout (:mod:`geo.loading`) and load with ``load_area_set(name, home)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

from geo.tables import (
    AGE_GROUPS,
    validate_facilities,
    validate_gazetteer,
    validate_population,
    validate_streets,
)

__all__ = [
    "AGE_GROUPS",
    "METRIC_CRS",
    "REGISTERED_DIR",
    "AreaSet",
    "age_group_of",
    "build_city_area_set",
    "load_area_set",
    "utm_crs",
]

GEOGRAPHIC_CRS = "EPSG:4326"
METRIC_CRS = "EPSG:32651"
"""UTM zone 51N: metres, good for Shanghai (the metric CRS :func:`utm_crs` picks there)."""

DATA_DIR = Path(__file__).resolve().parent / "data"
REGISTERED_DIR = "geo"
"""Folder under the Sentinel home holding registered area sets, one folder per name."""
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""Area-set names are folder names: letters, digits, ``_`` and ``-``."""
ADJACENCY_TOLERANCE_DEG = 1e-5
"""Gap (about 1 m) under which two streets still count as touching."""

_AGE_EDGES = np.array([5.0, 15.0, 25.0, 60.0])
_MAX_SAMPLING_ROUNDS = 200


def utm_crs(lon: float, lat: float) -> str:
    """The WGS84 UTM zone CRS containing a point, as ``EPSG:326zz`` (north) or ``327zz``.

    Parameters
    ----------
    lon, lat : float
        WGS84 longitude and latitude in degrees.

    Returns
    -------
    str
        ``EPSG:32651`` for Shanghai (121.4° E, 31.2° N).

    Notes
    -----
    zone = floor((lon + 180) / 6) mod 60 + 1; the Norwegian and Svalbard exceptions are
    ignored. Inside its zone UTM's scale factor lies between 0.9996 (central meridian) and
    about 1.0010 (zone edge at the equator), so distances within a city are good to 0.1 %.
    """
    if not (np.isfinite(lon) and np.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"not a longitude/latitude: ({lon}, {lat})")
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def age_group_of(age_years: ArrayLike) -> NDArray[np.str_]:
    """Age group of each age, vectorised.

    Parameters
    ----------
    age_years : array_like of float
        Age in (completed) years; fractions are allowed (4.9 is in ``0-4``).

    Returns
    -------
    numpy.ndarray of str
        One of :data:`AGE_GROUPS` per element; the empty string where the age is negative
        or NaN (no group), so callers can mask unknown ages with a sentinel such as -1.
    """
    age = np.asarray(age_years, dtype=float)
    groups = np.asarray((*AGE_GROUPS, ""))
    index = np.searchsorted(_AGE_EDGES, age, side="right")
    index = np.where(age >= 0, index, len(AGE_GROUPS))  # NaN compares False
    return groups[index]


@dataclass(frozen=True, eq=False)
class AreaSet:
    """A validated set of streets with population, health facilities and a gazetteer.

    Use :func:`load_area_set` or :func:`build_city_area_set`; they validate the tables.

    Attributes
    ----------
    name : str
        Name of the set, e.g. ``changning``.
    streets : geopandas.GeoDataFrame
        ``street_code`` (12-digit str), ``name_zh``, ``name_en``, ``population`` (int) and
        polygon ``geometry`` in EPSG:4326, sorted by ``street_code``.
    population : pandas.DataFrame
        ``street_code, age_group, population``: every street × :data:`AGE_GROUPS`.
    facilities : pandas.DataFrame
        ``facility_id, name_zh, name_en, level, kind, street_code, lat, lon, departments,
        weight`` (see ``geo/README.md``).
    gazetteer : pandas.DataFrame
        ``street_code, kind, name_zh, number_from, number_to`` for address matching.
    """

    name: str
    streets: gpd.GeoDataFrame
    population: pd.DataFrame
    facilities: pd.DataFrame
    gazetteer: pd.DataFrame

    @property
    def codes(self) -> list[str]:
        """Street codes, sorted."""
        return list(self._codes)

    @cached_property
    def _codes(self) -> NDArray[np.object_]:
        return np.asarray(sorted(self.streets["street_code"].astype("str")), dtype=object)

    @cached_property
    def _geoms(self) -> NDArray[np.object_]:
        """Street polygons in :attr:`codes` order, prepared for repeated predicates."""
        by_code = self.streets.set_index(self.streets["street_code"].astype("str")).geometry
        geoms = by_code.loc[list(self._codes)].to_numpy()
        shapely.prepare(geoms)
        return geoms

    @cached_property
    def _tree(self) -> shapely.STRtree:
        return shapely.STRtree(self._geoms)

    @cached_property
    def _adjacency(self) -> dict[str, tuple[str, ...]]:
        left, right = self._tree.query(
            self._geoms, predicate="dwithin", distance=ADJACENCY_TOLERANCE_DEG
        )
        keep = left != right
        neighbours: dict[str, set[str]] = {c: set() for c in self._codes}
        for a, b in zip(self._codes[left[keep]], self._codes[right[keep]], strict=True):
            neighbours[a].add(b)
            neighbours[b].add(a)
        return {c: tuple(sorted(n)) for c, n in neighbours.items()}

    @cached_property
    def metric_crs(self) -> str:
        """UTM zone of the streets' area-weighted centroid (EPSG:32651 for Shanghai)."""
        centre = shapely.centroid(shapely.GeometryCollection(list(self._geoms)))
        return utm_crs(centre.x, centre.y)

    @cached_property
    def _projected(self) -> gpd.GeoDataFrame:
        return self.streets.to_crs(self.metric_crs)

    def adjacency(self) -> dict[str, list[str]]:
        """Queen contiguity: streets whose polygons share at least one boundary point.

        Returns
        -------
        dict of str to list of str
            For every code, the sorted codes of its neighbours (possibly empty). Gaps under
            :data:`ADJACENCY_TOLERANCE_DEG` (about 1 m) count as touching, so boundaries
            digitised separately still join up.
        """
        return {c: list(n) for c, n in self._adjacency.items()}

    def projected(self) -> gpd.GeoDataFrame:
        """Return the streets in :attr:`metric_crs` (metres); a fresh copy.

        For Shanghai's sets that is :data:`METRIC_CRS` (UTM 51N); a set registered for
        another place is projected to the UTM zone of its centroid (:func:`utm_crs`).
        """
        return self._projected.copy()

    def centroids_km(self) -> pd.DataFrame:
        """Street centroids in :attr:`metric_crs` kilometres (UTM 51N for Shanghai).

        Returns
        -------
        pandas.DataFrame
            ``street_code, x, y`` in :attr:`codes` order; distances between rows are in km.
        """
        proj = self._projected.set_index(self._projected["street_code"].astype("str"))
        cent = proj.geometry.loc[list(self._codes)].centroid
        return pd.DataFrame(
            {
                "street_code": pd.Series(self._codes, dtype="str"),
                "x": cent.x.to_numpy() / 1000.0,
                "y": cent.y.to_numpy() / 1000.0,
            }
        )

    def locate(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.object_]:
        """Street containing each point (point in polygon), vectorised.

        Parameters
        ----------
        lat, lon : array_like of float
            WGS84 latitude and longitude, same shape.

        Returns
        -------
        numpy.ndarray of object
            A street code per point, or ``None`` where the point is outside every street or
            a coordinate is NaN. A point on a shared boundary goes to the lower code.
        """
        y = np.asarray(lat, dtype=float)
        x = np.asarray(lon, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"lat and lon differ in shape: {y.shape} and {x.shape}")
        flat_x, flat_y = x.ravel(), y.ravel()
        out = np.full(flat_x.shape, None, dtype=object)
        ok = np.flatnonzero(np.isfinite(flat_x) & np.isfinite(flat_y))
        points = shapely.points(flat_x[ok], flat_y[ok])
        which, street = self._tree.query(points, predicate="intersects")
        order = np.lexsort((street, which))  # by point, then the lowest code first
        which, street = which[order], street[order]
        first = np.unique(which, return_index=True)[1]
        out[ok[which[first]]] = self._codes[street[first]]
        return out.reshape(x.shape)

    def sample_points(
        self, street_codes: ArrayLike, rng: np.random.Generator
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Uniform random points inside the given streets (vectorised rejection sampling).

        Parameters
        ----------
        street_codes : array_like of str
            One street code per point wanted; codes may repeat.
        rng : numpy.random.Generator
            Source of randomness; the same generator state gives the same points.

        Returns
        -------
        lat, lon : numpy.ndarray of float
            Coordinates in EPSG:4326, aligned with ``street_codes``.

        Raises
        ------
        ValueError
            If a code is not a street of this set.
        """
        wanted = np.asarray(street_codes, dtype=object).ravel()
        index = pd.Index(self._codes).get_indexer(pd.Index(wanted))
        if (index < 0).any():
            raise ValueError(f"street_codes not in area set {self.name!r}: {sorted(set(wanted[index < 0]))[:10]}")  # fmt: skip
        bounds = shapely.bounds(self._geoms)[index]
        lon = np.empty(len(wanted))
        lat = np.empty(len(wanted))
        todo = np.arange(len(wanted))
        for _ in range(_MAX_SAMPLING_ROUNDS):
            if todo.size == 0:
                break
            u = rng.random((todo.size, 2))
            b = bounds[todo]
            x = b[:, 0] + u[:, 0] * (b[:, 2] - b[:, 0])
            y = b[:, 1] + u[:, 1] * (b[:, 3] - b[:, 1])
            inside = shapely.contains_xy(self._geoms[index[todo]], x, y)
            lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
            todo = todo[~inside]
        if todo.size:
            raise RuntimeError(f"rejection sampling did not converge for {todo.size} points")
        return lat, lon


def _read_streets(path: Path) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    streets = gpd.read_file(path, engine="pyogrio")
    if streets.crs is None:
        raise ValueError(f"{path}: coordinate reference system unknown")
    if "street_code" in streets.columns:
        streets["street_code"] = streets["street_code"].astype("str")
    streets = streets.to_crs(GEOGRAPHIC_CRS)
    validate_streets(streets, str(path))
    streets["population"] = streets["population"].astype("int64")
    keep = [c for c in streets.columns if c not in {"approximate"}]
    return streets[keep].sort_values("street_code", ignore_index=True)


def _read_csv(path: Path, **kwargs: object) -> pd.DataFrame:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        return pd.read_csv(path, encoding="utf-8", **kwargs)  # type: ignore[call-overload]
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: cannot be read as the expected table ({exc})") from exc


def load_area_set(name: str = "changning", home: Path | None = None) -> AreaSet:
    """Load and validate a shipped or registered area set.

    Parameters
    ----------
    name : str
        A folder under ``geo/data`` (shipped sets, looked up first) or, when ``home`` is
        given, under ``home / "geo"`` (sets registered with
        :func:`geo.loading.register_area_set`). Either holds ``streets.geojson``,
        ``population.csv``, ``facilities.csv`` and ``gazetteer.csv``.
    home : Path, optional
        The Sentinel home folder (``$SENTINEL_HOME``); without it only shipped sets load.

    Returns
    -------
    AreaSet

    Raises
    ------
    ValueError
        If the set does not exist, or a file is missing or fails validation; the message
        names the file and the problem.
    """
    valid = NAME_PATTERN.fullmatch(name) is not None  # never a path out of the folders
    registry = None if home is None else Path(home) / REGISTERED_DIR
    for folder in (DATA_DIR / name, registry / name if registry else None):
        if valid and folder is not None and folder.is_dir():
            return _load_folder(name, folder)
    shipped = sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir())
    problem = f"unknown area set {name!r}; shipped: {', '.join(shipped)}"
    if registry is not None:
        found = sorted(p.name for p in registry.glob("*") if p.is_dir() and NAME_PATTERN.fullmatch(p.name))  # fmt: skip
        problem += f"; registered in {registry}: {', '.join(found) or 'none'}"
    raise ValueError(problem)


def _load_folder(name: str, folder: Path) -> AreaSet:
    streets = _read_streets(folder / "streets.geojson")
    code = {"street_code": "str"}
    population = _read_csv(folder / "population.csv", dtype={**code, "age_group": "str"})
    validate_population(population, streets, str(folder / "population.csv"))
    population["population"] = population["population"].astype("int64")
    facilities = _read_csv(folder / "facilities.csv", dtype={**code, "facility_id": "str"})
    validate_facilities(facilities, streets, str(folder / "facilities.csv"))
    gazetteer = _read_csv(
        folder / "gazetteer.csv",
        dtype={**code, "number_from": "Int64", "number_to": "Int64"},
    )
    validate_gazetteer(gazetteer, streets, str(folder / "gazetteer.csv"))
    return AreaSet(name, streets, population, facilities, gazetteer)


@lru_cache(maxsize=4)
def build_city_area_set(seed: int = 0) -> AreaSet:
    """Build the SYNTHETIC Shanghai-sized city used for benchmarks and scaled simulation.

    16 districts, 215 streets (Changning's 10 shipped streets plus 205 synthetic ones),
    about 24.9 million residents; see :func:`geo.city.build_city` for how it is made.
    Results are cached per seed and shared: treat the tables as read-only
    (``build_city_area_set.__wrapped__(seed)`` builds a fresh copy).

    Parameters
    ----------
    seed : int
        Seed of the synthetic geometry, populations and facilities; same seed, same city.

    Returns
    -------
    AreaSet
    """
    from geo.city import build_city  # geo.city builds on AreaSet

    return build_city(seed)
