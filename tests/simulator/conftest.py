"""Fixtures shared by the simulator writer tests: hand-written visit versions as day batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from sentinel.simulator.records import VISIT_COLUMNS, DayBatch

ASSET = Path(__file__).parent / "assets" / "source_visits.csv"
TIME_COLUMNS = ("visit_time", "birth_date", "created_at", "updated_at")


def _to_batches(rows: pd.DataFrame) -> list[DayBatch]:
    batches = []
    for day, part in rows.groupby("arrival_day", sort=True):
        pick = part["kind"] == "visit"
        batches.append(
            DayBatch(
                day=date.fromisoformat(str(day)),
                visits=part.loc[pick, list(VISIT_COLUMNS)].reset_index(drop=True),
                corrections=part.loc[~pick, list(VISIT_COLUMNS)].reset_index(drop=True),
            )
        )
    return batches


@pytest.fixture(scope="session")
def rows() -> pd.DataFrame:
    """The hand-written visit versions, one row each, with ``arrival_day`` and ``kind``."""
    frame = pd.read_csv(ASSET, dtype=str, keep_default_na=False, na_values=[""])
    for col in TIME_COLUMNS:
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[us]")
    for col in ("lat", "lon", "temperature_c"):
        frame[col] = frame[col].astype(float)
    frame["age_years"] = frame["age_years"].astype(int)
    return frame


@pytest.fixture(scope="session")
def to_batches() -> Callable[[pd.DataFrame], list[DayBatch]]:
    """Group visit versions into the day batches the simulator streams."""
    return _to_batches
