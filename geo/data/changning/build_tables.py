"""Build population.csv (by age group) and facilities.csv for the Changning area set.

Both are APPROXIMATE and SIMULATED: age structure follows the district's published
shape (an old district: about 31 % aged 60+) with small street-to-street variation;
facilities follow the district's mix (tertiary and secondary hospitals, one community
health service centre per street, some stations) with invented coordinates inside each
street polygon. Run from the repository root after build_streets.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

HERE = Path(__file__).parent
AGE_SHARES = {"0-4": 0.035, "5-14": 0.075, "15-24": 0.075, "25-59": 0.505, "60+": 0.31}

# id, name_zh, name_en, level, kind, street, departments, weight, offset within the street (0..1)
FACILITIES = [
    ("F01", "上海市同仁医院", "Tongren Hospital", "tertiary", "general", "310105001000", "GEN;PED;EMR;FEV;DER;OPH;GI", 8, 0.3),
    ("F02", "上海市儿童医院（长宁院区）", "Children's Hospital (Changning campus)", "tertiary", "paediatric", "310105002000", "PED;EMR;FEV;DER;OPH", 6, 0.5),
    ("F03", "长宁区妇幼保健院", "Changning Maternal and Child Health Hospital", "secondary", "maternal_child", "310105004000", "GEN;PED;EMR", 3, 0.6),
    ("F04", "长宁区光华中西医结合医院", "Guanghua Integrated Medicine Hospital", "secondary", "tcm", "310105005000", "GEN;EMR;FEV;GI", 4, 0.4),
    ("F05", "长宁区天山中医医院", "Tianshan TCM Hospital", "secondary", "tcm", "310105006000", "GEN;EMR;FEV;DER", 4, 0.5),
    ("F06", "长宁区北新泾医院", "Beixinjing District Hospital", "secondary", "general", "310105011000", "GEN;PED;EMR;FEV;OPH", 4, 0.5),
    ("F07", "华阳街道社区卫生服务中心", "Huayang Community Health Service Centre", "chsc", "community", "310105001000", "GEN;PED", 2, 0.7),
    ("F08", "江苏街道社区卫生服务中心", "Jiangsu Community Health Service Centre", "chsc", "community", "310105002000", "GEN;PED", 2, 0.2),
    ("F09", "新华街道社区卫生服务中心", "Xinhua Community Health Service Centre", "chsc", "community", "310105004000", "GEN;PED", 2, 0.3),
    ("F10", "周家桥街道社区卫生服务中心", "Zhoujiaqiao Community Health Service Centre", "chsc", "community", "310105005000", "GEN;PED", 2, 0.7),
    ("F11", "天山街道社区卫生服务中心", "Tianshan Community Health Service Centre", "chsc", "community", "310105006000", "GEN;PED", 2, 0.2),
    ("F12", "仙霞街道社区卫生服务中心", "Xianxia Community Health Service Centre", "chsc", "community", "310105008000", "GEN;PED", 2, 0.5),
    ("F13", "虹桥街道社区卫生服务中心", "Hongqiao Community Health Service Centre", "chsc", "community", "310105009000", "GEN;PED", 2, 0.5),
    ("F14", "程家桥街道社区卫生服务中心", "Chengjiaqiao Community Health Service Centre", "chsc", "community", "310105010000", "GEN;PED", 2, 0.5),
    ("F15", "北新泾街道社区卫生服务中心", "Beixinjing Community Health Service Centre", "chsc", "community", "310105011000", "GEN;PED", 2, 0.2),
    ("F16", "新泾镇社区卫生服务中心", "Xinjing Town Community Health Service Centre", "chsc", "community", "310105102000", "GEN;PED", 2, 0.5),
    ("F17", "仙霞街道茅台社区卫生服务站", "Maotai Community Health Service Station", "chss", "community", "310105008000", "GEN", 0.5, 0.8),
    ("F18", "虹桥街道古北社区卫生服务站", "Gubei Community Health Service Station", "chss", "community", "310105009000", "GEN", 0.5, 0.2),
    ("F19", "新泾镇淞虹社区卫生服务站", "Songhong Community Health Service Station", "chss", "community", "310105102000", "GEN", 0.5, 0.2),
    ("F20", "新泾镇北渔社区卫生服务站", "Beiyu Community Health Service Station", "chss", "community", "310105102000", "GEN", 0.5, 0.8),
    ("F21", "天山街道遵义社区卫生服务站", "Zunyi Community Health Service Station", "chss", "community", "310105006000", "GEN", 0.5, 0.8),
]  # fmt: skip


def _point_inside(geom: object, t: float) -> tuple[float, float]:
    """A point inside ``geom``: along the west-east line through its representative point."""
    minx, _, maxx, _ = geom.bounds  # type: ignore[attr-defined]
    rep = geom.representative_point()  # type: ignore[attr-defined]
    for shrink in (1.0, 0.7, 0.4, 0.0):
        x = rep.x + (minx + t * (maxx - minx) - rep.x) * shrink
        if geom.contains(Point(x, rep.y)):  # type: ignore[attr-defined]
            return round(rep.y, 6), round(x, 6)
    return round(rep.y, 6), round(rep.x, 6)


def main() -> None:
    streets = gpd.read_file(HERE / "streets.geojson").set_index("street_code")
    rng = np.random.default_rng(20201101)
    with (HERE / "population.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["street_code", "age_group", "population"])
        for code, row in streets.iterrows():
            shares = np.array(list(AGE_SHARES.values())) * rng.uniform(0.9, 1.1, len(AGE_SHARES))
            counts = np.floor(shares / shares.sum() * row["population"]).astype(int)
            counts[3] += int(row["population"]) - counts.sum()  # remainder to 25-59
            for group, n in zip(AGE_SHARES, counts, strict=True):
                w.writerow([code, group, int(n)])
    with (HERE / "facilities.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            [
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
            ]
        )
        for fid, zh, en, level, kind, code, depts, weight, t in FACILITIES:
            lat, lon = _point_inside(streets.loc[code, "geometry"], t)
            w.writerow([fid, zh, en, level, kind, code, lat, lon, depts, weight])


if __name__ == "__main__":
    main()
