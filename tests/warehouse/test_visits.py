"""Upserting visits: idempotent, later version wins, corrections move between partitions."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from warehouse.errors import WarehouseError
from warehouse.store import Warehouse

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "visits").rglob("*"))
        if p.is_file()
    }


def _stored(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    rows = warehouse.read_arrow("visits").to_pylist()
    keys = [r["visit_key"] for r in rows]
    assert len(keys) == len(set(keys)), "a key is stored twice"
    return {r["visit_key"]: r for r in rows}


@pytest.fixture
def batch(visit_row: Any, visits_frame: Any) -> pd.DataFrame:
    return visits_frame(
        [
            visit_row("k1", D5, hour=8),
            visit_row("k2", D5, hour=11, complaint="腹泻3次", syndromes=["gi"]),
            visit_row("k3", D6, hour=9, street_code=None),
        ]
    )


def test_upserting_the_same_batch_twice_changes_nothing(
    warehouse: Warehouse, batch: pd.DataFrame
) -> None:
    first = warehouse.upsert_visits(batch, "b1")
    assert (first.inserted, first.replaced, first.unchanged) == (3, 0, 0)
    assert first.dates_touched == (D5, D6)
    files = _files(warehouse.root)
    rows = warehouse.read_arrow("visits")
    assert sorted(files) == [
        "visits/visit_date=2026-01-05/data.parquet",
        "visits/visit_date=2026-01-06/data.parquet",
    ]

    second = warehouse.upsert_visits(batch, "b2")
    assert (second.inserted, second.replaced, second.unchanged) == (0, 0, 3)
    assert second.dates_touched == ()
    assert _files(warehouse.root) == files
    assert warehouse.read_arrow("visits").equals(rows)
    assert {r["batch_id"] for r in rows.to_pylist()} == {"b1"}


def test_files_are_deterministic_whatever_the_row_order(
    tmp_path: Path, batch: pd.DataFrame
) -> None:
    one = Warehouse(tmp_path / "one")
    two = Warehouse(tmp_path / "two")
    one.upsert_visits(batch, "b1")
    two.upsert_visits(batch.iloc[::-1].reset_index(drop=True), "b1")
    assert _files(one.root) == _files(two.root)
    stored = one.read_arrow("visits")
    assert stored["visit_key"].to_pylist() == ["k1", "k2", "k3"]  # (visit_time, visit_key)


def test_a_later_version_replaces(
    warehouse: Warehouse, batch: pd.DataFrame, visit_row: Any, visits_frame: Any
) -> None:
    warehouse.upsert_visits(batch, "b1")
    correction = visits_frame([visit_row("k1", D5, "2026-01-06 08:00", hour=8, complaint="咳嗽")])
    result = warehouse.upsert_visits(correction, "b2")
    assert (result.inserted, result.replaced, result.unchanged) == (0, 1, 0)
    assert result.dates_touched == (D5,)
    stored = _stored(warehouse)
    assert stored["k1"]["chief_complaint"] == "咳嗽"
    assert stored["k1"]["batch_id"] == "b2"
    assert stored["k2"]["batch_id"] == "b1"
    assert len(stored) == 3


def test_an_equal_version_with_other_content_replaces(
    warehouse: Warehouse, batch: pd.DataFrame
) -> None:
    warehouse.upsert_visits(batch, "b1")
    same_time = batch.iloc[[0]].assign(temperature_c=39.5)
    result = warehouse.upsert_visits(same_time, "b2")
    assert (result.inserted, result.replaced, result.unchanged) == (0, 1, 0)
    assert _stored(warehouse)["k1"]["temperature_c"] == 39.5


def test_an_older_version_never_overwrites(
    warehouse: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    newer = visits_frame([visit_row("k1", D5, "2026-01-07 10:00", complaint="新")])
    older = visits_frame([visit_row("k1", D6, "2026-01-05 10:00", complaint="旧")])
    warehouse.upsert_visits(newer, "b1")
    files = _files(warehouse.root)
    result = warehouse.upsert_visits(older, "b2")
    assert (result.inserted, result.replaced, result.unchanged) == (0, 0, 1)
    assert result.dates_touched == ()
    assert _files(warehouse.root) == files
    assert _stored(warehouse)["k1"]["chief_complaint"] == "新"


def test_a_correction_that_moves_the_date_leaves_the_old_partition(
    warehouse: Warehouse, batch: pd.DataFrame, visit_row: Any, visits_frame: Any
) -> None:
    warehouse.upsert_visits(batch, "b1")
    moved = visits_frame([visit_row("k3", D7, "2026-01-08 09:00", street_code=None)])
    result = warehouse.upsert_visits(moved, "b2")
    assert (result.inserted, result.replaced, result.unchanged) == (0, 1, 0)
    assert result.dates_touched == (D6, D7)
    # k3 was alone on D6: the partition is gone, not left empty.
    assert not (warehouse.root / "visits" / "visit_date=2026-01-06").exists()
    stored = _stored(warehouse)
    assert stored["k3"]["visit_date"] == D7
    assert len(stored) == 3

    moved_again = visits_frame([visit_row("k1", D7, "2026-01-09 09:00", hour=7)])
    warehouse.upsert_visits(moved_again, "b3")
    stored = _stored(warehouse)
    assert stored["k1"]["visit_date"] == D7
    assert [k for k, r in stored.items() if r["visit_date"] == D5] == ["k2"]


def test_duplicate_keys_in_a_batch_keep_the_latest(
    warehouse: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    batch = visits_frame(
        [
            visit_row("k1", D5, "2026-01-05 12:00", complaint="second"),
            visit_row("k1", D6, "2026-01-06 12:00", complaint="third"),
            visit_row("k1", D5, "2026-01-05 10:00", complaint="first"),
        ]
    )
    result = warehouse.upsert_visits(batch, "b1")
    assert (result.inserted, result.replaced, result.unchanged) == (1, 0, 0)
    assert result.dates_touched == (D6,)
    stored = _stored(warehouse)
    assert stored["k1"]["chief_complaint"] == "third"
    assert stored["k1"]["visit_date"] == D6


def test_a_copy_left_by_an_interrupted_move_is_healed(
    warehouse: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    old = visits_frame([visit_row("k1", D5, "2026-01-05 10:00"), visit_row("k2", D5, hour=10)])
    new = visits_frame([visit_row("k1", D6, "2026-01-06 10:00")])
    warehouse.upsert_visits(old, "b1")
    d5 = warehouse.root / "visits" / "visit_date=2026-01-05" / "data.parquet"
    before = d5.read_bytes()
    warehouse.upsert_visits(new, "b2")
    d5.write_bytes(before)  # as if the process died before rewriting the old partition
    assert len(warehouse.read_arrow("visits")) == 3

    result = warehouse.upsert_visits(new, "b2")
    assert (result.inserted, result.replaced, result.unchanged) == (0, 0, 1)
    assert result.dates_touched == (D5,)
    stored = _stored(warehouse)
    assert stored["k1"]["visit_date"] == D6
    assert sorted(stored) == ["k1", "k2"]


def test_empty_batch_is_a_no_op(warehouse: Warehouse, visits_frame: Any) -> None:
    result = warehouse.upsert_visits(visits_frame([]), "b1")
    assert (result.inserted, result.replaced, result.unchanged, result.dates_touched) == (
        0,
        0,
        0,
        (),
    )


def test_bad_batch_ids_are_refused(warehouse: Warehouse, batch: pd.DataFrame) -> None:
    with pytest.raises(WarehouseError, match="cannot name a partition"):
        warehouse.upsert_visits(batch, "../escape")


def test_a_held_lock_makes_a_writer_wait_then_fail(tmp_path: Path, batch: pd.DataFrame) -> None:
    warehouse = Warehouse(tmp_path / "w", lock_timeout=0.2)
    fd = os.open(warehouse.root / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another writer (a separate open file description)
        with pytest.raises(WarehouseError, match="locked by another writer"):
            warehouse.upsert_visits(batch, "b1")
    finally:
        os.close(fd)
    assert warehouse.upsert_visits(batch, "b1").inserted == 3


def test_concurrent_writers_are_serialised(warehouse: Warehouse) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        sys.path.insert(0, {tests!r})
        from conftest import make_visit, make_visits
        from warehouse.store import Warehouse

        warehouse = Warehouse(Path({root!r}))
        prefix = sys.argv[1]
        for i in range(8):
            rows = [make_visit(f"{{prefix}}{{i}}-{{j}}", hour=j) for j in range(5)]
            rows.append(make_visit("shared", updated_at=f"2026-01-05 1{{i}}:00", complaint=prefix))
            warehouse.upsert_visits(make_visits(rows), f"{{prefix}}{{i}}")
        """
    ).format(tests=str(Path(__file__).parent), root=str(warehouse.root))
    writers = [
        subprocess.Popen([sys.executable, "-c", script, prefix], stderr=subprocess.PIPE)
        for prefix in ("a", "b")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    stored = _stored(warehouse)
    assert len(stored) == 2 * 8 * 5 + 1
    assert stored["shared"]["updated_at"] == dt.datetime(2026, 1, 5, 17, 0)
