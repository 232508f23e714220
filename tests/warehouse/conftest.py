"""Fixtures of the warehouse tests: a fresh warehouse and a visit-row factory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from warehouse.store import Warehouse

VisitRow = Callable[..., dict[str, Any]]
VisitsFrame = Callable[[list[dict[str, Any]]], pd.DataFrame]


def make_visit(
    key: str,
    day: dt.date | str = "2026-01-05",
    updated_at: dt.datetime | str = "2026-01-05 10:00",
    *,
    hour: int = 9,
    complaint: str = "发热咳嗽2天",
    street_code: str | None = "310105001000",
    syndromes: list[str] | None = None,
    source: str = "his",
) -> dict[str, Any]:
    """Return one valid `visits` row; keyword arguments vary what tests care about."""
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    stamp = dt.datetime.fromisoformat(updated_at) if isinstance(updated_at, str) else updated_at
    return {
        "visit_key": key,
        "source": source,
        "facility_id": "F01",
        "visit_date": day,
        "visit_time": dt.datetime.combine(day, dt.time(hour, 30)),
        "setting": "outpatient",
        "patient_key": "p-" + key,
        "sex": "F",
        "age_years": 34,
        "age_group": "25-59",
        "street_code": street_code,
        "residence_method": "code" if street_code else "unresolved",
        "chief_complaint": complaint,
        "diagnosis_codes": ["J06.9"],
        "temperature_c": 38.2,
        "syndromes": ["respiratory"] if syndromes is None else syndromes,
        "updated_at": stamp,
    }


def make_visits(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Return rows as a DataFrame with the dtypes an upstream transform would produce."""
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in make_visit("x")})
    df = pd.DataFrame(rows)
    df["visit_time"] = pd.to_datetime(df["visit_time"]).astype("datetime64[us]")
    df["updated_at"] = pd.to_datetime(df["updated_at"]).astype("datetime64[us]")
    return df


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    """A fresh, empty warehouse under tmp_path."""
    return Warehouse(tmp_path / "warehouse")


@pytest.fixture
def visit_row() -> VisitRow:
    """Factory of one valid `visits` row (see :func:`make_visit`)."""
    return make_visit


@pytest.fixture
def visits_frame() -> VisitsFrame:
    """Factory of a `visits` DataFrame from rows (see :func:`make_visits`)."""
    return make_visits
