"""The scheduled pipeline's steps (what the Airflow tasks call), on a simulated HIS database."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from sentinel.errors import UsageError
from sentinel.pipeline import (
    batch_key,
    detect_shard,
    ingest_window,
    ingest_windows,
    load_reference,
    publish_alerts,
    sqlalchemy_url,
)
from sentinel.pipeline_settings import parse_pipeline_settings
from sentinel.settings import Settings, load_settings
from sentinel.simulator.run import SimulationOptions, simulate
from warehouse.store import Warehouse

START = dt.date(2025, 1, 1)


@pytest.fixture(scope="module")
def his(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated district HIS (SQLite) over 60 days from 2025-01-01."""
    out = tmp_path_factory.mktemp("sources")
    simulate(SimulationOptions(out=out, days=60, formats=("his",)))
    return out / "his.sqlite"


def settings_for(home: Path, his: Path, extra: str = "") -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    (home / "sentinel.toml").write_text(
        "[pipeline]\n" + extra + "\n[[pipeline.sources]]\n"
        f'name = "his"\nkind = "sql"\nlocation = "sqlite:///{his}"\n',
        encoding="utf-8",
    )
    settings = replace(load_settings(home, environ={}), hmac_key="pipeline-test-key")
    load_reference(settings)
    return settings


def test_pipeline_settings_are_checked() -> None:
    ok = parse_pipeline_settings(
        {"sources": [{"name": "his", "kind": "sql", "connection": "his_db"}], "reconcile_days": 3},
        "t.toml",
    )
    assert ok.source("his").connection == "his_db" and ok.reconcile_days == 3
    bad = [
        ({"sources": [{"name": "His", "kind": "sql", "location": "x"}]}, "name 'His'"),
        ({"sources": [{"name": "a", "kind": "ftp", "location": "x"}]}, "kind 'ftp'"),
        ({"sources": [{"name": "a", "kind": "sql"}]}, "either location or connection"),
        ({"sources": [{"name": "a", "kind": "hl7", "connection": "c"}]}, "for sql sources"),
        (
            {"sources": [{"name": "a", "kind": "sql", "location": "postgresql://u:secret@h/db"}]},
            "holds a password",
        ),
        (
            {
                "sources": [
                    {"name": "a", "kind": "hl7", "location": "x"},
                    {"name": "a", "kind": "fhir", "location": "y"},
                ]
            },
            "used twice",
        ),
        ({"reconcile_days": -1}, "reconcile_days"),
        ({"lookback": 2}, "unknown key(s) lookback"),
        ({"shard_by": "street"}, "shard_by"),
    ]
    for data, message in bad:
        with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_pipeline_settings(data, "t.toml")
    with pytest.raises(UsageError, match="no pipeline source named 'lis'"):
        ok.source("lis")


def test_airflow_connection_uris_become_sqlalchemy_urls() -> None:
    assert sqlalchemy_url("postgres://u:p@h:5432/his") == "postgresql+psycopg2://u:p@h:5432/his"
    assert sqlalchemy_url("mysql://u@h/his") == "mysql+pymysql://u@h/his"
    assert sqlalchemy_url("sqlite:////data/his.db") == "sqlite:////data/his.db"
    with pytest.raises(UsageError, match="no scheme"):
        sqlalchemy_url("u:secret@host/db")


def _tables(root: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for name in names
        for p in sorted((root / name).rglob("*.parquet"))
    }


def test_rerunning_a_window_changes_nothing(tmp_path: Path, his: Path) -> None:
    settings = settings_for(tmp_path / "home", his)
    start = dt.datetime(2025, 1, 10, 9)
    first = ingest_window(settings, "his", start, start + dt.timedelta(hours=1))
    assert first["extracted"] == first["loaded"] + first["quarantined"] > 0
    assert first["batch_id"] == batch_key("his", "hourly", start, start + dt.timedelta(hours=1))
    names = ("visits", "syndrome_daily", "syndrome_age_daily", "quarantine")
    before = _tables(settings.warehouse_dir, names)
    again = ingest_window(settings, "his", start, start + dt.timedelta(hours=1))
    assert again["batch_id"] == first["batch_id"] and again["inserted"] == 0
    assert _tables(settings.warehouse_dir, names) == before
    batches = Warehouse(settings.warehouse_dir).read_table("batches")
    assert list(batches["batch_id"]) == [first["batch_id"]]


def test_an_aware_window_is_read_in_the_sources_local_time(tmp_path: Path, his: Path) -> None:
    settings = settings_for(tmp_path / "home", his)
    utc = dt.datetime(2025, 1, 10, 1, tzinfo=dt.UTC)  # 09:00 in Shanghai
    got = ingest_window(settings, "his", utc, utc + dt.timedelta(hours=1))
    assert got["window"] == ["2025-01-10T09:00:00", "2025-01-10T10:00:00"]


def _content(root: Path) -> dict[str, pd.DataFrame]:
    wh = Warehouse(root)
    out = {}
    for name in ("visits", "syndrome_daily", "syndrome_age_daily"):
        table = wh.read_table(name).drop(columns=["batch_id"], errors="ignore")
        out[name] = table.sort_values(list(table.columns[:3])).reset_index(drop=True)
    q = wh.read_table("quarantine")[["source", "row_ref", "reason", "stage"]]
    out["quarantine"] = q.drop_duplicates().sort_values(list(q.columns)).reset_index(drop=True)
    return out


def test_backfill_over_14_days_equals_the_hourly_runs(tmp_path: Path, his: Path) -> None:
    """Hourly runs in order, and a backfill running the same hours newest first, agree.

    The backfill runs in a second process at the same time (as Airflow runs backfill
    runs beside the live ones); the warehouses are separate.
    """
    hours = [dt.datetime(2025, 1, 15) + dt.timedelta(hours=h) for h in range(14 * 24)]
    windows = [(h, h + dt.timedelta(hours=1)) for h in hours]
    live = settings_for(tmp_path / "live", his)
    backfill = settings_for(tmp_path / "backfill", his)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        key = backfill.hmac_key
        later = pool.submit(ingest_windows, backfill.home, "his", windows[::-1], hmac_key=key)
        results = ingest_windows(live.home, "his", windows, hmac_key=key)
        results += later.result()
    assert len(results) == 2 * len(windows)
    assert all(r["extracted"] == r["loaded"] + r["quarantined"] for r in results)
    a, b = _content(live.warehouse_dir), _content(backfill.warehouse_dir)
    assert len(a["visits"]) > 14 * 1000
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_like=True, obj=name)
    # every visit changed in the fortnight is there, in its latest version
    days = pd.to_datetime(a["visits"]["visit_time"]).dt.date
    assert days.min() <= dt.date(2025, 1, 15) and days.max() == dt.date(2025, 1, 28)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, his: Path) -> Settings:
    """The whole 60 days loaded in one window."""
    settings = settings_for(tmp_path_factory.mktemp("loaded"), his)
    ingest_window(settings, "his", dt.datetime(2024, 12, 1), dt.datetime(2025, 3, 10))
    return settings


def test_detection_shards_together_equal_one_run(loaded: Settings) -> None:
    day = dt.date(2025, 3, 1)
    staged = [detect_shard(loaded, day, p) for p in ("31010500", "31010501", "31010510")]
    parts = pd.concat([pd.read_parquet(p) for p in staged], ignore_index=True)
    whole = pd.read_parquet(detect_shard(loaded, day, "all"))
    assert len(whole) > 0
    assert sorted(parts["alert_id"]) == sorted(whole["alert_id"])

    def same(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.drop(columns="created_at").sort_values("alert_id").reset_index(drop=True)
        return frame.astype({"age_group": object}).where(frame.notna(), None)

    pd.testing.assert_frame_equal(same(parts), same(whole), check_dtype=False)
    publish_alerts(loaded, day, staged)
    stored = Warehouse(loaded.warehouse_dir).read_dates("alerts", day, day).to_pandas()
    assert sorted(stored["alert_id"]) == sorted(whole["alert_id"])
    files = _tables(loaded.warehouse_dir, ("alerts",))
    publish_alerts(loaded, day, staged)  # publishing again changes nothing
    assert _tables(loaded.warehouse_dir, ("alerts",)) == files


def test_a_quiet_hour_loads_an_empty_batch(tmp_path: Path, his: Path) -> None:
    settings = settings_for(tmp_path / "home", his)
    start = dt.datetime(2026, 6, 1, 3)  # after the simulated period: nothing changed
    got = ingest_window(settings, "his", start, start + dt.timedelta(hours=1))
    assert got["extracted"] == got["loaded"] == got["quarantined"] == 0 and got["dates"] == []
    batches = Warehouse(settings.warehouse_dir).read_table("batches")
    assert list(batches["batch_id"]) == [got["batch_id"]]


def test_file_sources_are_pulled_by_the_hour_their_files_landed(tmp_path: Path) -> None:
    import os
    from zoneinfo import ZoneInfo

    out = tmp_path / "feed"
    simulate(SimulationOptions(out=out, days=2, formats=("hl7",)))
    files = sorted(p for p in (out / "hl7").rglob("*") if p.is_file())
    assert files
    landed = dt.datetime(2025, 1, 3, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    for p in files:
        os.utime(p, (landed, landed))
    home = tmp_path / "home"
    home.mkdir()
    (home / "sentinel.toml").write_text(
        f'[pipeline]\n[[pipeline.sources]]\nname = "adt"\nkind = "hl7"\nlocation = "{out / "hl7"}"\n',
        encoding="utf-8",
    )
    settings = replace(load_settings(home, environ={}), hmac_key="k")
    load_reference(settings)
    before = ingest_window(settings, "adt", dt.datetime(2025, 1, 3, 8), dt.datetime(2025, 1, 3, 9))
    hour = ingest_window(settings, "adt", dt.datetime(2025, 1, 3, 9), dt.datetime(2025, 1, 3, 10))
    assert before["extracted"] == 0
    assert hour["extracted"] == hour["loaded"] + hour["quarantined"] > 1000
    again = ingest_window(settings, "adt", dt.datetime(2025, 1, 3, 9), dt.datetime(2025, 1, 3, 10))
    assert again["batch_id"] == hour["batch_id"] and again["inserted"] == 0
