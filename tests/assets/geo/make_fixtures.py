"""Regenerate the boundary-file fixtures of tests/geo/test_loading.py from the shipped set.

Run from the repository root: ``.venv/bin/python tests/assets/geo/make_fixtures.py``.
Every file is small and derived from ``geo/data/changning/streets.geojson`` (APPROXIMATE
boundaries), with the field names and CRSs that boundary files from elsewhere tend to
have:

- ``changning.geojson``: EPSG:4326, fields ``code, name, name_en, pop`` (+ ``note``).
- ``changning.gpkg``: EPSG:32651 (UTM 51N), layer ``streets`` with an integer ``CODE``,
  ``NAME_ZH`` and a real-valued ``POP``, plus a second layer ``outline``.
- ``changning.shp`` (+ ``.shx .dbf .prj .cpg``): EPSG:4549 (CGCS2000 3-degree
  Gauss-Kruger CM 120E, as surveying offices deliver), fields ``XZQDM, XZQMC, RKS``.
- ``changning_ages.csv``: the shipped population by age group.
Broken ones: ``duplicate_codes.geojson``, ``invalid_geometry.geojson`` (an inward spike in
one street), ``no_crs.shp`` (no ``.prj``), ``bad_population.geojson`` (0 and -500),
``empty.geojson`` (no features), ``points.geojson`` (points, not polygons).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import shapely

HERE = Path(__file__).resolve().parent
SHIPPED = HERE.parents[2] / "geo" / "data" / "changning"
SPIKED = "310105006000"


def _streets() -> gpd.GeoDataFrame:
    streets = gpd.read_file(SHIPPED / "streets.geojson", engine="pyogrio")
    return streets.drop(columns="approximate").sort_values("street_code", ignore_index=True)


def _as(streets: gpd.GeoDataFrame, fields: dict[str, str]) -> gpd.GeoDataFrame:
    return streets.rename(columns=fields)[[*fields.values(), "geometry"]]


def _spiked(polygon: shapely.Polygon) -> shapely.Polygon:
    """The polygon with a zero-width spike from its first vertex towards its centre."""
    ring = list(polygon.exterior.coords)
    centre = polygon.centroid
    tip = (0.5 * (ring[0][0] + centre.x), 0.5 * (ring[0][1] + centre.y))
    return shapely.Polygon([ring[0], tip, *ring[:-1]])


def main() -> None:
    for old in HERE.iterdir():
        if old.suffix in {".geojson", ".gpkg", ".shp", ".shx", ".dbf", ".prj", ".cpg", ".csv"}:
            old.unlink()
    streets = _streets()
    geojson = _as(
        streets,
        {"street_code": "code", "name_zh": "name", "name_en": "name_en", "population": "pop"},
    )
    geojson["note"] = "approximate"
    geojson.to_file(HERE / "changning.geojson", driver="GeoJSON", engine="pyogrio")

    gpkg = _as(streets, {"street_code": "CODE", "name_zh": "NAME_ZH", "population": "POP"})
    gpkg["CODE"] = gpkg["CODE"].astype("int64")
    gpkg["POP"] = gpkg["POP"].astype("float64")
    gpkg = gpkg.to_crs("EPSG:32651")
    options = {"SPATIAL_INDEX": "NO"}
    gpkg.to_file(HERE / "changning.gpkg", layer="streets", engine="pyogrio", layer_options=options)
    outline = gpd.GeoDataFrame({"name": ["长宁区"]}, geometry=[gpkg.union_all()], crs=gpkg.crs)
    outline.to_file(
        HERE / "changning.gpkg", layer="outline", engine="pyogrio", layer_options=options
    )

    shp = _as(streets, {"street_code": "XZQDM", "name_zh": "XZQMC", "population": "RKS"})
    shp.to_crs("EPSG:4549").to_file(HERE / "changning.shp", engine="pyogrio", encoding="UTF-8")
    shp.to_file(HERE / "no_crs.shp", engine="pyogrio", encoding="UTF-8")
    (HERE / "no_crs.prj").unlink()

    shutil.copy(SHIPPED / "population.csv", HERE / "changning_ages.csv")

    dup = geojson.copy()
    dup.loc[1, "code"] = dup.loc[0, "code"]
    dup.to_file(HERE / "duplicate_codes.geojson", driver="GeoJSON", engine="pyogrio")
    bad = geojson.copy()
    bad.loc[bad["code"] == SPIKED, "geometry"] = _spiked(
        bad.loc[bad["code"] == SPIKED].geometry.iloc[0]
    )
    bad.to_file(HERE / "invalid_geometry.geojson", driver="GeoJSON", engine="pyogrio")
    low = geojson.copy()
    low.loc[2, "pop"], low.loc[5, "pop"] = 0, -500
    low.to_file(HERE / "bad_population.geojson", driver="GeoJSON", engine="pyogrio")
    points = geojson.copy()
    points["geometry"] = points.geometry.representative_point()
    points.to_file(HERE / "points.geojson", driver="GeoJSON", engine="pyogrio")
    empty = {"type": "FeatureCollection", "features": []}
    (HERE / "empty.geojson").write_text(json.dumps(empty) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
