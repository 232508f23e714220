"""The schema: every table round-trips through Arrow and Parquet, docs match the schema."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.catalog import run_query
from warehouse.frames import frame_to_arrow
from warehouse.reviews import append_review
from warehouse.schema import TABLES, arrow_schema, duckdb_type, file_schema, render_markdown
from warehouse.store import Warehouse

REPO = Path(__file__).resolve().parents[2]


def _sample(type_: pa.DataType) -> Any:
    samples: dict[pa.DataType, Any] = {
        pa.string(): "310105001000",
        pa.int16(): 42,
        pa.int64(): 7,
        pa.float64(): 1.5,
        pa.date32(): dt.date(2026, 1, 5),
        pa.timestamp("us"): dt.datetime(2026, 1, 5, 9, 30, 0, 123456),
        pa.list_(pa.string()): ["a", "b"],
    }
    return samples[type_]


@pytest.mark.parametrize("name", list(TABLES))
def test_table_round_trips_through_arrow_and_parquet(name: str, tmp_path: Path) -> None:
    table = TABLES[name]
    row = {c.name: (c.values[0] if c.values else _sample(c.type)) for c in table.columns}
    if name == "visits":
        row["visit_date"] = row["visit_time"].date()
    data = frame_to_arrow(name, pd.DataFrame([row, row]))
    assert data.schema == arrow_schema(name)
    assert data.to_pylist() == [row, row]

    stored = data.drop_columns(table.partition_by) if table.partition_by else data
    pq.write_table(stored, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet")
    assert back.schema.remove_metadata() == file_schema(name)
    assert back.equals(stored)


def _sample_row(name: str) -> dict[str, Any]:
    row = {c.name: (c.values[0] if c.values else _sample(c.type)) for c in TABLES[name].columns}
    if name == "visits":
        row["visit_date"] = row["visit_time"].date()
    if TABLES[name].column_names.count("batch_id"):
        row["batch_id"] = "b1"
    return row


def _describe(warehouse: Warehouse, name: str) -> list[tuple[str, str]]:
    described = run_query(warehouse.root, f"DESCRIBE {name}")
    return list(zip(described["column_name"], described["column_type"], strict=True))


def test_views_have_the_schema_types_empty_and_filled(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w")
    expected = {n: [(c.name, duckdb_type(c)) for c in t.columns] for n, t in TABLES.items()}
    for name in TABLES:
        assert _describe(warehouse, name) == expected[name]
        assert run_query(warehouse.root, f"SELECT count(*) AS n FROM {name}")["n"][0] == 0

    day = dt.date(2026, 1, 5)
    warehouse.upsert_visits(pd.DataFrame([_sample_row("visits")]), "b1")
    warehouse.replace_table("streets", pd.DataFrame([_sample_row("streets")]))
    warehouse.replace_table("facilities", pd.DataFrame([_sample_row("facilities")]))
    warehouse.rebuild_syndrome_daily([day], ["a"])
    warehouse.write_alerts(day, pd.DataFrame([_sample_row("alerts")]))
    warehouse.append_quarantine(
        "b1", pd.DataFrame([_sample_row("quarantine")]).drop(columns="batch_id")
    )
    warehouse.record_batch(_sample_row("batches") | {"batch_id": "b1"})
    append_review(warehouse.root, _sample_row("alert_reviews"))
    for name in TABLES:
        assert _describe(warehouse, name) == expected[name]
        assert run_query(warehouse.root, f"SELECT count(*) AS n FROM {name}")["n"][0] == 1
        assert warehouse.read_arrow(name).schema == arrow_schema(name)


def test_partition_column_is_not_stored_in_files() -> None:
    for name, table in TABLES.items():
        if table.partition_by:
            assert table.partition_by not in file_schema(name).names
            assert table.partition_by in arrow_schema(name).names


def test_duckdb_types() -> None:
    visits = TABLES["visits"]
    assert duckdb_type(visits.column("syndromes")) == "VARCHAR[]"
    assert duckdb_type(visits.column("visit_time")) == "TIMESTAMP"
    assert duckdb_type(visits.column("age_years")) == "SMALLINT"
    assert duckdb_type(visits.column("visit_date")) == "DATE"


def test_markdown_documents_every_table_and_column() -> None:
    text = render_markdown()
    assert text.startswith("<!-- Generated")
    for table in TABLES.values():
        assert f"## `{table.name}`" in text
        for column in table.columns:
            assert f"| `{column.name}` | `{duckdb_type(column)}` |" in text


def test_committed_docs_equal_current_rendering() -> None:
    committed = (REPO / "docs" / "warehouse.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "run: python -m warehouse.docs > docs/warehouse.md"
