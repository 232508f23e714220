"""Build population.csv (by age group) and facilities.csv of the Changning area set.

Both are APPROXIMATE and SIMULATED. The age structure follows the district's published
shape (an old district: about 31 % aged 60 and over) with small street-to-street variation.
The facilities follow the district's mix (two tertiary and four secondary hospitals, one
community health service centre per street, five community health service stations); the
hospitals named after real institutions are placed at invented points, and the ones marked
（模拟） / (simulated) stand in for care that residents get nearby. Every coordinate is a
random point well inside the facility's (approximate) street polygon. gazetteer.csv is
written by hand. Run from the repository root after build_streets.py:

    .venv/bin/python geo/data/changning/build_tables.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

HERE = Path(__file__).parent
AGE_SHARES = {"0-4": 0.035, "5-14": 0.075, "15-24": 0.075, "25-59": 0.505, "60+": 0.31}
SEED = 20201101  # census day 2020-11-01

# id, name_zh, name_en, level, kind, street, departments, weight
FACILITIES = [
    ("F01", "上海市同仁医院", "Tongren Hospital", "tertiary", "general", "310105001000", "GEN;PED;EMR;FEV;DER;OPH;GI", 8),
    ("F02", "儿童医院长宁分院（模拟）", "Children's Hospital, Changning branch (simulated)", "tertiary", "paediatric", "310105009000", "PED;EMR;FEV;DER;OPH;GI", 6),
    ("F03", "长宁区妇幼保健院", "Changning Maternal and Child Health Hospital", "secondary", "maternal_child", "310105002000", "GEN;PED;EMR", 3),
    ("F04", "上海市光华中西医结合医院", "Guanghua Hospital of Integrated Chinese and Western Medicine", "secondary", "tcm", "310105004000", "GEN;EMR;FEV;DER;GI", 4),
    ("F05", "长宁区天山中医医院", "Tianshan Hospital of Traditional Chinese Medicine", "secondary", "tcm", "310105006000", "GEN;EMR;FEV;DER", 4),
    ("F06", "长宁区北新泾医院（模拟）", "Beixinjing District Hospital (simulated)", "secondary", "general", "310105011000", "GEN;PED;EMR;FEV;OPH", 4),
    ("F07", "华阳路街道社区卫生服务中心", "Huayanglu Community Health Service Centre", "chsc", "community", "310105001000", "GEN;PED", 2),
    ("F08", "江苏路街道社区卫生服务中心", "Jiangsulu Community Health Service Centre", "chsc", "community", "310105002000", "GEN;PED", 2),
    ("F09", "新华路街道社区卫生服务中心", "Xinhualu Community Health Service Centre", "chsc", "community", "310105004000", "GEN;PED", 2),
    ("F10", "周家桥街道社区卫生服务中心", "Zhoujiaqiao Community Health Service Centre", "chsc", "community", "310105005000", "GEN;PED", 2),
    ("F11", "天山路街道社区卫生服务中心", "Tianshanlu Community Health Service Centre", "chsc", "community", "310105006000", "GEN;PED", 2),
    ("F12", "仙霞新村街道社区卫生服务中心", "Xianxiaxincun Community Health Service Centre", "chsc", "community", "310105008000", "GEN;PED", 2),
    ("F13", "虹桥街道社区卫生服务中心", "Hongqiao Community Health Service Centre", "chsc", "community", "310105009000", "GEN;PED", 2),
    ("F14", "程家桥街道社区卫生服务中心", "Chengjiaqiao Community Health Service Centre", "chsc", "community", "310105010000", "GEN;PED", 2),
    ("F15", "北新泾街道社区卫生服务中心", "Beixinjing Community Health Service Centre", "chsc", "community", "310105011000", "GEN;PED", 2),
    ("F16", "新泾镇社区卫生服务中心", "Xinjing Town Community Health Service Centre", "chsc", "community", "310105102000", "GEN;PED", 2),
    ("F17", "仙霞新村街道茅台社区卫生服务站", "Maotai Community Health Service Station", "chss", "community", "310105008000", "GEN", 0.5),
    ("F18", "虹桥街道古北社区卫生服务站", "Gubei Community Health Service Station", "chss", "community", "310105009000", "GEN", 0.5),
    ("F19", "新泾镇淞虹社区卫生服务站", "Songhong Community Health Service Station", "chss", "community", "310105102000", "GEN", 0.5),
    ("F20", "新泾镇北渔社区卫生服务站", "Beiyu Community Health Service Station", "chss", "community", "310105102000", "GEN", 0.5),
    ("F21", "天山路街道遵义社区卫生服务站", "Zunyi Community Health Service Station", "chss", "community", "310105006000", "GEN", 0.5),
]  # fmt: skip


def split_population(total: int, rng: np.random.Generator) -> list[int]:
    """Split ``total`` over the age groups: published shares, varied by up to ±10 %."""
    shares = np.array(list(AGE_SHARES.values())) * rng.uniform(0.9, 1.1, len(AGE_SHARES))
    counts = np.floor(shares / shares.sum() * total).astype(int)
    counts[3] += total - int(counts.sum())  # the remainder goes to the largest group
    return [int(c) for c in counts]


def place_facilities(
    streets: gpd.GeoDataFrame, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """A (lat, lon) per facility: inside its street, ≥ 150 m from the edge, spread apart."""
    placed: list[tuple[float, float]] = []
    for row in FACILITIES:
        inner = streets.loc[row[5], "geometry"].buffer(-0.0015)
        minx, miny, maxx, maxy = inner.bounds
        for _ in range(10_000):
            lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            far = all(np.hypot(lat - a, lon - b) > 0.003 for a, b in placed)
            if far and shapely.contains_xy(inner, lon, lat):
                break
        else:
            raise RuntimeError(f"no room for facility {row[0]}")
        placed.append((round(lat, 6), round(lon, 6)))
    return placed


def main() -> None:
    """Write population.csv and facilities.csv next to this script."""
    streets = gpd.read_file(HERE / "streets.geojson").set_index("street_code").sort_index()
    rng = np.random.default_rng(SEED)
    with (HERE / "population.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["street_code", "age_group", "population"])
        for code, total in streets["population"].items():
            for group, n in zip(AGE_SHARES, split_population(int(total), rng), strict=True):
                w.writerow([code, group, n])
    points = place_facilities(streets, rng)
    with (HERE / "facilities.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["facility_id", "name_zh", "name_en", "level", "kind", "street_code",
                    "lat", "lon", "departments", "weight"])  # fmt: skip
        for (fid, zh, en, level, kind, code, depts, weight), (lat, lon) in zip(
            FACILITIES, points, strict=True
        ):
            w.writerow([fid, zh, en, level, kind, code, lat, lon, depts, weight])


if __name__ == "__main__":
    main()
