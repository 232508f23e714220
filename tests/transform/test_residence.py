import numpy as np
import pandas as pd

from geo.areas import load_area_set
from transform.residence import Gazetteer, resolve_residence


def _raw(**cols: list[object]) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base: dict[str, list[object]] = {
        "residence_code": [None] * n,
        "lat": [np.nan] * n,
        "lon": [np.nan] * n,
        "address": [None] * n,
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_gazetteer_roads_compounds_and_split_roads() -> None:
    gaz = Gazetteer(load_area_set().gazetteer)
    assert gaz.match("上海市长宁区仙霞新村12号楼302室") == ("310105008000", "")
    assert gaz.match("茅台路188弄3号601室") == ("310105008000", "")
    # 长宁路 crosses streets: the house number decides
    assert gaz.match("长宁路800弄5号") == ("310105001000", "")
    assert gaz.match("长宁路1500号") == ("310105005000", "")
    assert gaz.match("长宁路") == (
        None,
        "road crosses streets and the house number does not decide",
    )
    assert gaz.match("北京市朝阳区建国路1号") == (None, "address not in gazetteer")
    assert gaz.match("") == (None, "no address")


def test_order_of_trust_code_point_address() -> None:
    area = load_area_set()
    lat, lon = area.sample_points(np.array(["310105010000"]), np.random.default_rng(0))
    raw = _raw(
        residence_code=["310105002000", None, None, "999999999999", None],
        lat=[float(lat[0]), float(lat[0]), np.nan, np.nan, 39.9],
        lon=[float(lon[0]), float(lon[0]), np.nan, np.nan, 116.4],
        address=["茅台路1号", "茅台路1号", "茅台路1号", "不知道", None],
    )
    res = resolve_residence(raw, area)
    assert [c if isinstance(c, str) else None for c in res.street_code] == [
        "310105002000",
        "310105010000",
        "310105008000",
        None,
        None,
    ]
    assert list(res.method) == ["code", "point", "address", "unresolved", "unresolved"]
    assert res.reason.iloc[3] == "address not in gazetteer"
    assert res.reason.iloc[4] == "coordinates outside every street"
