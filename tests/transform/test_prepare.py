"""Preparing a batch in two processes gives exactly what one process gives."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from extract.his import extract_his_visits
from geo.areas import load_area_set
from sentinel.simulator.run import SimulationOptions, simulate
from transform.ingest import default_definitions
from transform.prepare import prepare_batch
from transform.validation import BatchRejected

NOW = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("prep")
    simulate(SimulationOptions(out=out, days=5, start=date(2025, 12, 1), seed=12, formats=("his",)))
    frame = extract_his_visits(f"sqlite:///{Path(out) / 'his.sqlite'}")
    # a conflicting duplicate: same visit id and version, other content
    twin = frame.iloc[[7]].assign(chief_complaint="另一版本")
    return pd.concat([frame, twin], ignore_index=True)


def _sorted(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    return frame.sort_values(by).reset_index(drop=True)


def test_two_processes_equal_one(raw: pd.DataFrame) -> None:
    args = {"key": b"k", "area": load_area_set(), "definitions": default_definitions(), "now": NOW}
    one = prepare_batch(raw, workers=1, **args)  # type: ignore[arg-type]
    two = prepare_batch(raw, workers=2, **args)  # type: ignore[arg-type]
    assert len(one.validation_quarantine) >= 3  # the duplicate pair and mis-keyed temperatures
    pd.testing.assert_frame_equal(
        _sorted(two.visits, "visit_key"), _sorted(one.visits, "visit_key")
    )
    pd.testing.assert_frame_equal(
        _sorted(two.validation_quarantine, "row_ref"), _sorted(one.validation_quarantine, "row_ref")
    )
    assert len(one.visits) + len(one.validation_quarantine) + len(one.deidentify_quarantine) == len(
        raw
    )


def test_structural_rejection_comes_back_from_the_child(raw: pd.DataFrame) -> None:
    broken = raw.drop(columns=["visit_time"])
    args = {"key": b"k", "area": load_area_set(), "definitions": default_definitions(), "now": NOW}
    with pytest.raises(BatchRejected, match="visit_time"):
        prepare_batch(broken, workers=2, **args)  # type: ignore[arg-type]
