"""HIS database → warehouse: reconciliation, idempotency, corrections, and no identifier lands."""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from extract.his import extract_his_visits
from geo.areas import load_area_set
from sentinel.simulator.run import SimulationOptions, simulate
from transform.ingest import ingest_raw_visits
from warehouse.catalog import run_query
from warehouse.store import Warehouse

KEY = b"k" * 32
ID_NUMBER = re.compile(r"(?<![0-9a-f])\d{17}[\dX](?![0-9a-f])")
MOBILE = re.compile(r"(?<![0-9a-f])1[3-9]\d{9}(?![0-9a-f])")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("src")
    simulate(SimulationOptions(out=out, days=14, start=date(2025, 5, 1), seed=2, formats=("his",)))
    return out


def _ingest(sources: Path, home: Path) -> tuple[Warehouse, object]:
    wh = Warehouse(home / "warehouse")
    raw = extract_his_visits(f"sqlite:///{sources / 'his.sqlite'}")
    result = ingest_raw_visits(
        raw,
        warehouse=wh,
        area=load_area_set(),
        key=KEY,
        source="his",
        location="his.sqlite",
    )
    return wh, result


def test_reconciles_and_reload_is_a_no_op(sources: Path, tmp_path: Path) -> None:
    _, first = _ingest(sources, tmp_path)
    assert first.extracted == first.loaded + first.quarantined  # type: ignore[attr-defined]
    before = {p: p.read_bytes() for p in (tmp_path / "warehouse" / "visits").rglob("*.parquet")}
    _, second = _ingest(sources, tmp_path)
    assert second.inserted == 0 and second.unchanged == first.loaded  # type: ignore[attr-defined]
    after = {p: p.read_bytes() for p in (tmp_path / "warehouse" / "visits").rglob("*.parquet")}
    assert before == after
    n = run_query(
        tmp_path / "warehouse", "SELECT count(*) AS n, count(DISTINCT street_code) AS s FROM visits"
    )
    assert int(n["n"].iloc[0]) == first.loaded and int(n["s"].iloc[0]) == 10  # type: ignore[attr-defined]
    batches = run_query(
        tmp_path / "warehouse", "SELECT extracted, loaded, quarantined FROM batches"
    )
    assert len(batches) == 2
    assert (batches["extracted"] == batches["loaded"] + batches["quarantined"]).all()


def test_corrected_his_row_replaces_earlier_version(sources: Path, tmp_path: Path) -> None:
    his = tmp_path / "his.sqlite"
    his.write_bytes((sources / "his.sqlite").read_bytes())
    _ingest_path = tmp_path / "home"
    wh = Warehouse(_ingest_path / "warehouse")
    area = load_area_set()
    url = f"sqlite:///{his}"
    ingest_raw_visits(
        extract_his_visits(url), warehouse=wh, area=area, key=KEY, source="his", location="x"
    )
    with sqlite3.connect(his) as con:
        reg = con.execute(
            "SELECT reg_id, updated_at FROM registrations ORDER BY reg_id LIMIT 1"
        ).fetchone()
        con.execute(
            "UPDATE registrations SET chief_complaint = '更正后：腹泻3天', updated_at = '2025-06-30 10:00:00.000000' WHERE reg_id = ?",
            (reg[0],),
        )
    since = pd.Timestamp("2025-06-01").to_pydatetime()
    changed = extract_his_visits(url, since=since)
    assert len(changed) == 1
    result = ingest_raw_visits(
        changed, warehouse=wh, area=area, key=KEY, source="his", location="x"
    )
    assert result.replaced == 1
    rows = run_query(
        _ingest_path / "warehouse",
        "SELECT chief_complaint FROM visits WHERE chief_complaint = '更正后：腹泻3天'",
    )
    assert len(rows) == 1
    total = run_query(_ingest_path / "warehouse", "SELECT count(*) AS n FROM visits")
    held = run_query(
        _ingest_path / "warehouse", "SELECT count(DISTINCT row_ref) AS n FROM quarantine"
    )
    with sqlite3.connect(his) as con:
        registrations = con.execute("SELECT count(*) FROM registrations").fetchone()[0]
    # mis-keyed temperatures are quarantined; everything else is loaded exactly once
    assert int(held["n"].iloc[0]) > 0
    assert int(total["n"].iloc[0]) + int(held["n"].iloc[0]) == registrations


def test_no_identifier_reaches_warehouse_or_logs(sources: Path, tmp_path: Path) -> None:
    from sentinel.logs import configure_logging

    configure_logging(tmp_path / "logs")
    _ingest(sources, tmp_path)
    with sqlite3.connect(sources / "his.sqlite") as con:
        patients = pd.read_sql(
            "SELECT name, id_card_no, mobile, address, patient_id FROM patients", con
        )
        complaints = pd.read_sql("SELECT chief_complaint FROM registrations", con)[
            "chief_complaint"
        ]
    planted = complaints[complaints.str.contains(r"患者|电话|身份证")]
    assert len(planted) > 0  # the sources really carry identifiers in free text
    names = set(patients["name"])
    exact = names | set(patients["address"]) | set(patients["patient_id"])
    planted_names = {n for n in names if any(n in c for c in planted)}
    cells: list[str] = []
    for parquet in (tmp_path / "warehouse").rglob("*.parquet"):
        frame = pd.read_parquet(parquet)
        for col in frame.columns:
            cells.extend(str(v) for v in frame[col].tolist())
    assert len(cells) > 10_000
    for cell in cells:
        assert not ID_NUMBER.search(cell), cell
        assert not MOBILE.search(cell), cell
        assert cell not in exact, cell
        assert not any(n in cell for n in planted_names), cell
    logs = (tmp_path / "logs" / "sentinel.log").read_text(encoding="utf-8")
    assert "batch_loaded" in logs
    assert not ID_NUMBER.search(logs) and not MOBILE.search(logs)
    assert not any(n in logs for n in names)
