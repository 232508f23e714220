"""streets, facilities, alerts, quarantine and the batch log."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from warehouse.catalog import run_query
from warehouse.errors import SchemaError, WarehouseError
from warehouse.store import Warehouse, sanitise_location


def _alert(alert_id: str, **changes: Any) -> dict[str, Any]:
    row = {
        "alert_id": alert_id,
        "syndrome": "gi",
        "street_codes": ["310105001000"],
        "age_group": "60+",
        "detector": "ears_c2",
        "observed": 5.0,
        "expected": 1.2,
        "upperbound": 4.1,
        "score": 3.4,
        "p_value": None,
        "severity": "medium",
        "status": "new",
        "created_at": pd.Timestamp("2026-01-06 02:00"),
        "params": None,
    }
    return row | changes


def _quarantine(row_ref: str, at: str = "2026-01-05 10:00") -> dict[str, Any]:
    return {
        "source": "hl7",
        "row_ref": row_ref,
        "reason": "missing visit_time",
        "stage": "transform",
        "quarantined_at": pd.Timestamp(at),
    }


def _batch(status: str, finished: dt.datetime | None, location: str) -> dict[str, Any]:
    return {
        "batch_id": "hl7-20260105T0200",
        "source": "hl7",
        "location": location,
        "extracted": 10,
        "loaded": 9,
        "quarantined": 1,
        "replaced": 2,
        "started": dt.datetime(2026, 1, 5, 2, 0),
        "finished": finished,
        "status": status,
    }


def test_replace_table_replaces_and_sorts(warehouse: Warehouse) -> None:
    facilities = pd.DataFrame(
        {
            "facility_id": ["F02", "F01"],
            "name_zh": ["医院二", "医院一"],
            "name_en": [None, "Hospital 1"],
            "level": ["2", "3"],
            "kind": ["general", "general"],
            "street_code": ["310105002000", None],
        }
    )
    warehouse.replace_table("facilities", facilities)
    assert warehouse.read_arrow("facilities")["facility_id"].to_pylist() == ["F01", "F02"]
    warehouse.replace_table("facilities", facilities.iloc[[0]])
    assert run_query(warehouse.root, "SELECT facility_id FROM facilities")[
        "facility_id"
    ].tolist() == ["F02"]
    # the same content again writes nothing (the hourly DAG refreshes these tables)
    path = warehouse.root / "facilities" / "data.parquet"
    stamp = path.stat().st_mtime_ns
    warehouse.replace_table("facilities", facilities.iloc[[0]])
    assert path.stat().st_mtime_ns == stamp
    warehouse.replace_table("facilities", facilities)
    assert path.stat().st_mtime_ns != stamp
    with pytest.raises(SchemaError, match="duplicate values of key facility_id"):
        warehouse.replace_table("facilities", pd.concat([facilities, facilities]))
    with pytest.raises(WarehouseError, match="streets, facilities only"):
        warehouse.replace_table("visits", facilities)


def test_alerts_of_a_day_are_replaced(warehouse: Warehouse) -> None:
    day = dt.date(2026, 1, 5)
    warehouse.write_alerts(day, pd.DataFrame([_alert("a2"), _alert("a1")]))
    warehouse.write_alerts("2026-01-06", pd.DataFrame([_alert("b1")]))
    warehouse.write_alerts(day, pd.DataFrame([_alert("a3", date=day)]))
    alerts = run_query(warehouse.root, "SELECT alert_id, date FROM alerts ORDER BY alert_id")
    assert alerts["alert_id"].tolist() == ["a3", "b1"]
    with pytest.raises(SchemaError, match="'date'"):
        warehouse.write_alerts(day, pd.DataFrame([_alert("x", date=dt.date(2026, 1, 7))]))
    warehouse.write_alerts(day, pd.DataFrame())
    assert warehouse.read_arrow("alerts")["alert_id"].to_pylist() == ["b1"]
    assert not (warehouse.root / "alerts" / "date=2026-01-05").exists()


def test_quarantine_appends_without_duplicates(warehouse: Warehouse) -> None:
    added = warehouse.append_quarantine("b1", pd.DataFrame([_quarantine("feed.hl7:12")]))
    assert added == 1
    rerun = pd.DataFrame(
        [
            _quarantine("feed.hl7:12", "2026-01-06 10:00"),
            _quarantine("feed.hl7:40", "2026-01-06 11:00"),
        ]
    )
    assert warehouse.append_quarantine("b1", rerun) == 1
    rows = warehouse.read_arrow("quarantine").to_pylist()
    assert [(r["row_ref"], r["quarantined_at"].day) for r in rows] == [
        ("feed.hl7:12", 5),
        ("feed.hl7:40", 6),
    ]
    assert {r["batch_id"] for r in rows} == {"b1"}


def test_batch_log_masks_passwords_and_keeps_one_row_per_batch(warehouse: Warehouse) -> None:
    url = "postgresql://sentinel:s3cret@db.example:5432/his"
    warehouse.record_batch(_batch("running", None, url))
    warehouse.record_batch(_batch("succeeded", dt.datetime(2026, 1, 5, 2, 5), url))
    rows = run_query(warehouse.root, "SELECT * FROM batches")
    assert len(rows) == 1
    assert rows["status"][0] == "succeeded"
    assert rows["location"][0] == "postgresql://sentinel:***@db.example:5432/his"
    assert "s3cret" not in b"".join(
        p.read_bytes() for p in warehouse.root.rglob("*.parquet")
    ).decode("latin-1")


@pytest.mark.parametrize(
    ("location", "masked"),
    [
        ("mysql+pymysql://u:p%40ss@h/db", "mysql+pymysql://u:***@h/db"),
        ("Driver=x;Server=h;PWD=secret;", "Driver=x;Server=h;PWD=***;"),
        ("/data/feeds/hl7", "/data/feeds/hl7"),
        ("sqlite:///his.db", "sqlite:///his.db"),
        ("postgresql://u:p@ss/w@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("https://hook.example/send?key=abc123&x=1", "https://hook.example/send?key=***&x=1"),
    ],
)
def test_sanitise_location(location: str, masked: str) -> None:
    assert sanitise_location(location) == masked


def test_alerts_can_replace_only_one_detector_family(warehouse: Warehouse) -> None:
    day = dt.date(2026, 1, 5)
    scan = _alert("s1", detector="scan_permutation", window_start=dt.date(2026, 1, 3), llr=7.5)
    warehouse.write_alerts(day, pd.DataFrame([_alert("t1"), scan]))
    # temporal detectors re-run: their alerts go, the scan's stay
    warehouse.write_alerts(
        day, pd.DataFrame([_alert("t2")]), replace=lambda d: not d.startswith("scan_")
    )
    stored = warehouse.read_table("alerts").sort_values("alert_id")
    assert stored["alert_id"].tolist() == ["s1", "t2"]
    assert stored["announcement"].tolist() == ["new", "new"]
    assert stored.loc[stored["alert_id"] == "s1", "llr"].iloc[0] == 7.5
    # an id that would clash with a kept alert is refused
    with pytest.raises(SchemaError, match="alert_id"):
        warehouse.write_alerts(
            day, pd.DataFrame([_alert("s1")]), replace=lambda d: not d.startswith("scan_")
        )


def test_files_of_an_earlier_schema_are_upgraded_on_opening(warehouse: Warehouse) -> None:
    import pyarrow.parquet as pq

    from warehouse.files import partition_path

    day = dt.date(2026, 1, 5)
    warehouse.write_alerts(day, pd.DataFrame([_alert("a1")]))
    path = partition_path(warehouse.root, "alerts", day)
    old = pq.read_table(path).drop_columns(["announcement", "llr", "window_start"])
    pq.write_table(old, path)  # as an earlier release wrote it
    (warehouse.root / ".schema.json").unlink()
    reopened = Warehouse(warehouse.root)
    got = run_query(reopened.root, "SELECT alert_id, announcement, llr, window_start FROM alerts")
    assert got["alert_id"].tolist() == ["a1"] and got["announcement"].tolist() == ["new"]
    assert got["llr"].isna().all() and got["window_start"].isna().all()
    # opening again does nothing (fingerprint kept)
    before = path.stat().st_mtime_ns
    Warehouse(warehouse.root)
    assert path.stat().st_mtime_ns == before
