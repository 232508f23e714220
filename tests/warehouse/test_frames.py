"""Validation of DataFrames against the schema: errors name table and column."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from warehouse.errors import SchemaError
from warehouse.frames import frame_to_arrow
from warehouse.store import Warehouse


@pytest.fixture
def visits(visit_row: Any, visits_frame: Any) -> Callable[..., pd.DataFrame]:
    def build(**changes: object) -> pd.DataFrame:
        df = visits_frame([visit_row("a"), visit_row("b")])
        for column, value in changes.items():
            df[column] = value
        return df

    return build


@pytest.mark.parametrize(
    ("changes", "column"),
    [
        ({"age_years": ["34", "35"]}, "age_years"),
        ({"age_years": [34, 40000]}, "age_years"),
        ({"age_years": [34.5, 3.0]}, "age_years"),
        ({"temperature_c": ["38.2", "37"]}, "temperature_c"),
        ({"sex": ["F", "X"]}, "sex"),
        ({"setting": [None, "outpatient"]}, "setting"),
        ({"facility_id": [1, 2]}, "facility_id"),
        ({"diagnosis_codes": ["J06.9", "A09"]}, "diagnosis_codes"),
        ({"visit_date": ["2026-01-05", "2026-01-05"]}, "visit_date"),
        ({"updated_at": [True, False]}, "updated_at"),
    ],
)
def test_bad_values_raise_schema_error_naming_the_column(
    changes: dict[str, object], column: str, visits: Callable[..., pd.DataFrame]
) -> None:
    with pytest.raises(SchemaError, match=f"'visits', column '{column}'"):
        frame_to_arrow("visits", visits(**changes, batch_id="b1"))


def test_time_zone_aware_timestamps_are_refused(visits: Callable[..., pd.DataFrame]) -> None:
    df = visits(batch_id="b1")
    df["visit_time"] = df["visit_time"].dt.tz_localize("Asia/Shanghai")
    with pytest.raises(SchemaError, match=r"'visit_time'.*datetime-with-zone"):
        frame_to_arrow("visits", df)


def test_a_time_of_day_in_a_date_column_is_refused(
    visits: Callable[..., pd.DataFrame],
) -> None:
    df = visits(batch_id="b1")
    df["visit_date"] = df["visit_time"]
    with pytest.raises(SchemaError, match=r"'visit_date'.*time of day"):
        frame_to_arrow("visits", df)


def test_missing_and_extra_columns_are_named(visits: Callable[..., pd.DataFrame]) -> None:
    with pytest.raises(SchemaError, match=r"missing column.*street_code"):
        frame_to_arrow("visits", visits(batch_id="b1").drop(columns="street_code"))
    with pytest.raises(SchemaError, match=r"unexpected column.*name"):
        frame_to_arrow("visits", visits(batch_id="b1", name="张三"))


def test_lenient_but_safe_conversions(visits: Callable[..., pd.DataFrame]) -> None:
    df = visits(batch_id="b1")
    df["age_years"] = [34.0, np.nan]  # pandas turns integers with gaps into floats
    df["street_code"] = np.nan  # an all-missing column of any dtype
    df["visit_date"] = pd.to_datetime(df["visit_date"])  # midnight timestamps
    df["temperature_c"] = [38, 37]
    data = frame_to_arrow("visits", df)
    assert data["age_years"].to_pylist() == [34, None]
    assert data["street_code"].null_count == 2
    assert data["visit_date"].to_pylist() == [dt.date(2026, 1, 5)] * 2
    assert data["temperature_c"].to_pylist() == [38.0, 37.0]


def test_store_validates_before_writing(
    warehouse: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    bad = visits_frame([visit_row("a")]).drop(columns="syndromes")
    with pytest.raises(SchemaError, match="syndromes"):
        warehouse.upsert_visits(bad, "b1")
    wrong_day = visits_frame([visit_row("a")])
    wrong_day["visit_date"] = dt.date(2026, 1, 6)
    with pytest.raises(SchemaError, match=r"'visit_date'.*visit_time"):
        warehouse.upsert_visits(wrong_day, "b1")
    other_batch = visits_frame([visit_row("a")]).assign(batch_id="b2")
    with pytest.raises(SchemaError, match="'batch_id'"):
        warehouse.upsert_visits(other_batch, "b1")
    assert not (warehouse.root / "visits").exists()
