"""The DuckDB catalog and read-only queries."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from warehouse.catalog import CATALOG_FILE, connect_readonly, refresh_catalog, run_query
from warehouse.errors import QueryError, ReadOnlyError, WarehouseError
from warehouse.store import Warehouse

DUCKDB_CLI = Path(sys.executable).parent / "duckdb"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def loaded(warehouse: Warehouse, visit_row: Any, visits_frame: Any) -> Warehouse:
    batch = visits_frame([visit_row("k1"), visit_row("k2", hour=10, syndromes=["gi"])])
    warehouse.upsert_visits(batch, "b1")
    return warehouse


def test_a_fresh_warehouse_answers_queries(warehouse: Warehouse) -> None:
    assert run_query(warehouse.root, "select count(*) as n from visits")["n"].tolist() == [0]
    assert sorted(run_query(warehouse.root, "SHOW TABLES")["name"]) == [
        "alert_reviews",
        "alerts",
        "batches",
        "facilities",
        "quarantine",
        "streets",
        "syndrome_age_daily",
        "syndrome_daily",
        "visits",
    ]


def test_queries_see_new_data(loaded: Warehouse) -> None:
    result = run_query(
        loaded.root, "SELECT visit_key, visit_date, syndromes FROM visits ORDER BY visit_key"
    )
    assert result["visit_key"].tolist() == ["k1", "k2"]
    assert [list(s) for s in result["syndromes"]] == [["respiratory"], ["gi"]]
    assert str(result["visit_date"][0].date()) == "2026-01-05"


def test_views_carry_the_schema_comments(loaded: Warehouse) -> None:
    comments = run_query(
        loaded.root,
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'visits' "
        "AND column_name = 'updated_at'",
    )
    assert "later version" in comments["comment"][0]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO visits SELECT * FROM visits",
        "CREATE TABLE t AS SELECT 1 AS a",
        "CREATE TEMP TABLE t (a INTEGER)",
        "DROP VIEW visits",
        "COPY (SELECT * FROM visits) TO '{root}/visits/out.csv'",
        "COPY (SELECT * FROM visits) TO '{outside}/out.parquet' (FORMAT parquet)",
        "EXPORT DATABASE '{outside}/export'",
        "ATTACH '{outside}/other.duckdb' AS other",
        "INSTALL spatial",
        "LOAD spatial",
        "SET enable_external_access = true",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/visits/out.csv'",
        "SELECT 1; DELETE FROM visits",
        "SELECT * FROM read_csv('{outside}/secret.csv')",
    ],
)
def test_writes_through_run_query_are_refused(loaded: Warehouse, tmp_path: Path, sql: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a\n1\n", encoding="utf-8")
    before = _snapshot(loaded.root)
    outside_before = _snapshot(outside)
    with pytest.raises(ReadOnlyError, match="read-only from `sentinel sql`"):
        run_query(loaded.root, sql.format(root=loaded.root, outside=outside))
    assert _snapshot(loaded.root) == before
    assert _snapshot(outside) == outside_before
    assert run_query(loaded.root, "SELECT count(*) AS n FROM visits")["n"][0] == 2


def test_the_read_only_connection_itself_refuses_writes(loaded: Warehouse) -> None:
    con = connect_readonly(loaded.root)
    try:
        with pytest.raises(Exception, match="read-only"):
            con.execute("CREATE TABLE t (a INTEGER)")
    finally:
        con.close()


def test_queries_over_the_warehouse_files_still_work(loaded: Warehouse) -> None:
    sql = f"SELECT count(*) AS n FROM read_parquet('{loaded.root}/visits/*/*.parquet')"
    assert run_query(loaded.root, sql)["n"][0] == 2
    assert run_query(loaded.root, "SELECT 1 AS a; SELECT 2 AS b")["b"][0] == 2
    assert len(run_query(loaded.root, "EXPLAIN SELECT * FROM visits")) == 1


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT nope FROM visits", "SELECT * FROM nowhere", ""])
def test_bad_queries_raise_query_error(loaded: Warehouse, sql: str) -> None:
    with pytest.raises(QueryError):
        run_query(loaded.root, sql)


def test_syntax_errors_carry_duckdbs_message(loaded: Warehouse) -> None:
    with pytest.raises(QueryError, match='syntax error at or near "SELEC"'):
        run_query(loaded.root, "SELEC 1")


def test_no_warehouse_yet(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match=r"no warehouse at .*run `sentinel demo`"):
        run_query(tmp_path / "missing", "SELECT 1")
    assert not (tmp_path / "missing").exists()


def test_refresh_is_cheap_when_nothing_changed_shape(
    loaded: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    assert refresh_catalog(loaded.root) is False
    catalog = (loaded.root / CATALOG_FILE).stat()
    loaded.upsert_visits(visits_frame([visit_row("k9", "2026-02-01")]), "b2")
    assert (loaded.root / CATALOG_FILE).stat().st_ino == catalog.st_ino  # not rebuilt
    assert run_query(loaded.root, "SELECT count(*) AS n FROM visits")["n"][0] == 3
    loaded.write_alerts("2026-02-01", pd.DataFrame())  # no alerts: still no file
    assert refresh_catalog(loaded.root) is False


def test_a_moved_warehouse_needs_a_refresh(loaded: Warehouse, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.move(loaded.root, moved)
    with pytest.raises(WarehouseError, match="refresh_catalog"):
        run_query(moved, "SELECT 1")
    assert refresh_catalog(moved) is True
    assert run_query(moved, "SELECT count(*) AS n FROM visits")["n"][0] == 2


def test_an_open_reader_in_another_process_does_not_block_writers(
    loaded: Warehouse, visit_row: Any, visits_frame: Any
) -> None:
    script = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(loaded.root / CATALOG_FILE)!r}, read_only=True)
        print(con.execute("SELECT count(*) FROM visits").fetchone()[0], flush=True)
        sys.stdin.readline()
        print(con.execute("SELECT count(*) FROM visits").fetchone()[0], flush=True)
        """
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "2"
        loaded.upsert_visits(visits_frame([visit_row("k3", hour=12)]), "b2")
        loaded.write_alerts("2026-01-05", pd.DataFrame([_alert()]))  # rebuilds the catalog
        assert run_query(loaded.root, "SELECT count(*) AS n FROM alerts")["n"][0] == 1
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "3"  # the views are globs
    finally:
        reader.kill()
        reader.wait()


def _alert() -> dict[str, Any]:
    return {
        "alert_id": "a1",
        "syndrome": "gi",
        "street_codes": ["310105001000"],
        "age_group": None,
        "detector": "ears_c2",
        "observed": 5.0,
        "expected": 1.2,
        "upperbound": 4.1,
        "score": 3.4,
        "p_value": None,
        "severity": "medium",
        "status": "new",
        "created_at": pd.Timestamp("2026-01-06 02:00"),
        "params": '{"baseline": 7}',
    }


@pytest.mark.skipif(not DUCKDB_CLI.exists(), reason="duckdb CLI not installed in the venv")
def test_the_duckdb_shell_opens_the_catalog_read_only(loaded: Warehouse) -> None:
    catalog = str(loaded.root / CATALOG_FILE)
    query = "SELECT count(*) AS n, max(visit_date) AS d FROM visits"
    done = subprocess.run(
        [str(DUCKDB_CLI), "-readonly", "-csv", catalog, "-c", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.split() == ["n,d", "2,2026-01-05"]
    refused = subprocess.run(
        [str(DUCKDB_CLI), "-readonly", catalog, "-c", "CREATE TABLE t (a INTEGER)"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "read-only" in refused.stderr + refused.stdout


def test_run_query_settings_do_not_leak_into_other_connections(loaded: Warehouse) -> None:
    con = connect_readonly(loaded.root)
    try:
        run_query(loaded.root, "SELECT 1")
        con.execute("SET threads = 1")  # not locked
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (True,)
        assert con.execute("SELECT count(*) FROM visits").fetchone() == (2,)
    finally:
        con.close()


def test_min_and_max_of_partition_columns(loaded: Warehouse) -> None:
    # DuckDB 1.5.5 crashes on max() of a bare hive column when one file is read
    # (duckdb/duckdb#25629); the views work around it.
    loaded.write_alerts("2026-01-05", pd.DataFrame([_alert()]))
    result = run_query(
        loaded.root,
        "SELECT (SELECT max(visit_date) FROM visits) AS v, "
        "(SELECT min(visit_date) FROM visits WHERE visit_date < DATE '2026-02-01') AS w, "
        "(SELECT max(date) FROM alerts) AS a",
    )
    assert [str(result[c][0].date()) for c in "vwa"] == ["2026-01-05"] * 3


def test_a_catalog_held_read_write_elsewhere_gives_a_clear_error(loaded: Warehouse) -> None:
    script = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(loaded.root / CATALOG_FILE)!r})
        print("open", flush=True)
        sys.stdin.readline()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(WarehouseError, match="held open read-write"):
            connect_readonly(loaded.root, attempts=2, wait=0.05)
    finally:
        holder.kill()
        holder.wait()
