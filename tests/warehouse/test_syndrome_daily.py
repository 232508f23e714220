"""syndrome_daily: a dense street x syndrome grid per date, counted from visits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from warehouse.catalog import run_query
from warehouse.store import Warehouse

D1, D2, D3 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)
S1, S2, S3, S9 = "310105001000", "310105002000", "310105004000", "310105999000"
SYNDROMES = ["respiratory", "gi", "ili"]


def _streets(*codes: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "street_code": list(codes),
            "name_zh": [f"街道{i}" for i in range(len(codes))],
            "name_en": None,
            "population": [10_000] * len(codes),
            "geometry_wkt": None,
        }
    )


@pytest.fixture
def loaded(warehouse: Warehouse, visit_row: Any, visits_frame: Any) -> Warehouse:
    rows = [
        visit_row("v1", D1, street_code=S1, syndromes=["ili", "respiratory"]),
        visit_row("v2", D1, street_code=S1, syndromes=["gi"]),
        visit_row("v3", D1, street_code=S1, syndromes=[]),
        visit_row("v4", D1, street_code=S2, syndromes=["respiratory"]),
        visit_row("v5", D1, street_code=None, syndromes=["gi"]),  # residence unresolved
        visit_row("v6", D1, street_code=S9, syndromes=["gi"]),  # not a known street
        visit_row("v7", D2, street_code=S1, syndromes=["rash", "respiratory"]),
    ]
    warehouse.upsert_visits(visits_frame(rows), "b1")
    warehouse.replace_table("streets", _streets(S3, S1, S2))
    return warehouse


def _grid(warehouse: Warehouse) -> dict[tuple[dt.date, str, str], tuple[int, int]]:
    rows = warehouse.read_arrow("syndrome_daily").to_pylist()
    return {(r["date"], r["street_code"], r["syndrome"]): (r["count"], r["visits"]) for r in rows}


def test_hand_computed_grid(loaded: Warehouse) -> None:
    written = loaded.rebuild_syndrome_daily([D1, D2, D3], SYNDROMES)
    assert written == 3 * 3 * 3
    expected = {(d, s, y): (0, 0) for d in (D1, D2, D3) for s in (S1, S2, S3) for y in SYNDROMES}
    expected |= {
        (D1, S1, "gi"): (1, 3),
        (D1, S1, "ili"): (1, 3),
        (D1, S1, "respiratory"): (1, 3),
        (D1, S2, "gi"): (0, 1),
        (D1, S2, "ili"): (0, 1),
        (D1, S2, "respiratory"): (1, 1),
        (D2, S1, "gi"): (0, 1),
        (D2, S1, "ili"): (0, 1),
        (D2, S1, "respiratory"): (1, 1),
    }
    assert _grid(loaded) == expected
    # The view agrees and carries the partition date.
    total = run_query(loaded.root, "SELECT sum(count) AS c, max(date) AS d FROM syndrome_daily")
    assert total["c"][0] == 5
    assert total["d"][0].date() == D3


def test_rebuild_after_a_correction_replaces_the_date(
    loaded: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    loaded.rebuild_syndrome_daily([D1, D2], SYNDROMES)
    fix = visit_row("v4", D2, "2026-01-07 10:00", street_code=S2, syndromes=["gi"])
    result = loaded.upsert_visits(visits_frame([fix]), "b2")
    loaded.rebuild_syndrome_daily(result.dates_touched, SYNDROMES)
    grid = _grid(loaded)
    assert grid[(D1, S2, "respiratory")] == (0, 0)
    assert grid[(D2, S2, "gi")] == (1, 1)
    assert len(grid) == 2 * 3 * 3


def test_streets_come_from_visits_when_the_street_table_is_empty(
    warehouse: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    rows = [
        visit_row("v1", D1, street_code=S1, syndromes=["gi"]),
        visit_row("v2", D2, street_code=S9, syndromes=[]),
        visit_row("v3", D2, street_code=None, syndromes=["gi"]),
    ]
    warehouse.upsert_visits(visits_frame(rows), "b1")
    warehouse.rebuild_syndrome_daily([D1], ["gi"])
    assert _grid(warehouse) == {(D1, S1, "gi"): (1, 1), (D1, S9, "gi"): (0, 0)}


def test_a_date_holds_exactly_the_given_syndromes(loaded: Warehouse) -> None:
    loaded.rebuild_syndrome_daily([D1], SYNDROMES)
    loaded.rebuild_syndrome_daily([D1], ["rash"])
    assert {k[2] for k in _grid(loaded)} == {"rash"}


def test_one_string_is_not_a_list_of_syndromes(loaded: Warehouse) -> None:
    with pytest.raises(TypeError):
        loaded.rebuild_syndrome_daily([D1], "gi")


def test_age_groups_are_counted_sparsely_and_rebuilt_with_the_grid(
    warehouse: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    rows = [
        visit_row("a1", D1, street_code=S1, syndromes=["ili", "respiratory"]),
        visit_row("a2", D1, street_code=S1, syndromes=["ili"])
        | {"age_years": 70, "age_group": "60+"},
        visit_row("a3", D1, street_code=S1, syndromes=["ili"])
        | {"age_years": 71, "age_group": "60+"},
        visit_row("a4", D1, street_code=S2, syndromes=["gi"])
        | {"age_years": None, "age_group": None},
        visit_row("a5", D1, street_code=S9, syndromes=["gi"]),  # not a known street
    ]
    warehouse.upsert_visits(visits_frame(rows), "b1")
    warehouse.replace_table("streets", _streets(S1, S2))
    warehouse.rebuild_syndrome_daily([D1, D2], SYNDROMES)
    got = {
        (r["date"], r["street_code"], r["age_group"], r["syndrome"]): r["count"]
        for r in warehouse.read_arrow("syndrome_age_daily").to_pylist()
    }
    assert got == {
        (D1, S1, "25-59", "ili"): 1,
        (D1, S1, "25-59", "respiratory"): 1,
        (D1, S1, "60+", "ili"): 2,
    }
    # The all-ages grid still counts the visit without an age.
    assert _grid(warehouse)[(D1, S2, "gi")] == (1, 1)
    # A correction moves a visit: the age table follows on rebuild.
    warehouse.upsert_visits(
        visits_frame([visit_row("a3", D2, "2026-01-06 10:00", street_code=S1, syndromes=["ili"])]),
        "b2",
    )
    warehouse.rebuild_syndrome_daily([D1, D2], SYNDROMES)
    got = {
        (r["date"], r["age_group"], r["syndrome"]): r["count"]
        for r in warehouse.read_arrow("syndrome_age_daily").to_pylist()
    }
    assert got[(D1, "60+", "ili")] == 1 and got[(D2, "25-59", "ili")] == 1
