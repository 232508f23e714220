"""Build streets.geojson: APPROXIMATE street polygons of Changning district, Shanghai.

Surveyed boundaries are not available offline, so the shipped polygons are Voronoi cells
around approximate sub-district centres, clipped to an approximate district outline. They
put each of the 9 sub-districts and 1 town in the right place, with a plausible size
(新泾镇, the town around Hongqiao airport, is the largest) and plausible neighbours. They are
NOT the official boundaries and are labelled approximate in the file itself. Populations are
approximate as well: they add up to the district's 2020 census total (693,051), rounded to
693,000. Run from the repository root, then run build_tables.py:

    .venv/bin/python geo/data/changning/build_streets.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon, mapping

HERE = Path(__file__).parent

# Approximate district outline (lon, lat), clockwise from the north-west corner: Suzhou
# Creek to the north, Jing'an and Xuhui to the east, Xuhui and Minhang to the south,
# Hongqiao airport to the west. About 41 km² (the district is 38.3 km²).
OUTLINE = Polygon(
    [
        (121.331, 31.225), (121.350, 31.228), (121.372, 31.229), (121.390, 31.225),
        (121.406, 31.227), (121.420, 31.229), (121.431, 31.228), (121.438, 31.225),
        (121.442, 31.216), (121.439, 31.205), (121.431, 31.197), (121.418, 31.195),
        (121.400, 31.193), (121.382, 31.189), (121.362, 31.186), (121.342, 31.187),
        (121.331, 31.195),
    ]
)  # fmt: skip

STREETS = [
    # code, name_zh, name_en, approximate centre (lon, lat), approximate population
    ("310105001000", "华阳路街道", "Huayanglu Subdistrict", (121.421, 31.220), 72_000),
    ("310105002000", "江苏路街道", "Jiangsulu Subdistrict", (121.433, 31.221), 46_000),
    ("310105004000", "新华路街道", "Xinhualu Subdistrict", (121.428, 31.204), 68_000),
    ("310105005000", "周家桥街道", "Zhoujiaqiao Subdistrict", (121.408, 31.220), 78_000),
    ("310105006000", "天山路街道", "Tianshanlu Subdistrict", (121.398, 31.211), 82_000),
    ("310105008000", "仙霞新村街道", "Xianxiaxincun Subdistrict", (121.387, 31.204), 96_000),
    ("310105009000", "虹桥街道", "Hongqiao Subdistrict", (121.412, 31.201), 72_000),
    ("310105010000", "程家桥街道", "Chengjiaqiao Subdistrict", (121.367, 31.195), 38_000),
    ("310105011000", "北新泾街道", "Beixinjing Subdistrict", (121.379, 31.219), 62_000),
    ("310105102000", "新泾镇", "Xinjing Town", (121.351, 31.213), 79_000),
]
DISTRICT_TOTAL = 693_000
NOTE = (
    "APPROXIMATE boundaries and populations, not surveyed: Voronoi cells around approximate "
    "sub-district centres clipped to an approximate district outline; populations approximate, "
    "summing to the 2020 census total of Changning (693,051, rounded). Built by build_streets.py."
)


def _round6(coords: np.ndarray) -> np.ndarray:
    return np.round(coords, 6)


def build() -> dict[str, object]:
    """Return the GeoJSON FeatureCollection of the approximate street polygons."""
    if sum(s[4] for s in STREETS) != DISTRICT_TOTAL:
        raise ValueError("street populations must add up to the district total")
    centres = MultiPoint([s[3] for s in STREETS])
    cells = shapely.voronoi_polygons(centres, extend_to=OUTLINE.buffer(0.05), ordered=True)
    features = []
    for (code, zh, en, _, population), cell in zip(STREETS, cells.geoms, strict=True):
        # Snapping to a 1e-6 degree grid (about 0.1 m) rounds the written coordinates and
        # keeps the polygons valid.
        shape = shapely.set_precision(cell.intersection(OUTLINE), 1e-6)
        if not isinstance(shape, Polygon) or not shape.is_valid:
            raise ValueError(f"cell of {code} is not one valid polygon")
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "street_code": code,
                    "name_zh": zh,
                    "name_en": en,
                    "population": population,
                    "approximate": True,
                },
                "geometry": mapping(shapely.transform(shapely.normalize(shape), _round6)),
            }
        )
    return {
        "type": "FeatureCollection",
        "name": "changning_streets_approximate",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "note": NOTE,
        "features": features,
    }


def _compact(collection: dict[str, object]) -> str:
    """One feature per line: small diffs, still readable."""
    head = {k: v for k, v in collection.items() if k != "features"}
    lines = [json.dumps(f, ensure_ascii=False) for f in collection["features"]]  # type: ignore[attr-defined]
    text = json.dumps(head, ensure_ascii=False)[:-1] + ',\n"features": [\n'
    return text + ",\n".join(lines) + "\n]}\n"


if __name__ == "__main__":
    (HERE / "streets.geojson").write_text(_compact(build()), encoding="utf-8")
