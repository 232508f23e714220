"""The Airflow DAGs for real: parsed by a DagBag, run with ``dag.test()`` on simulated sources.

Runs happen in subprocesses with their own ``AIRFLOW_HOME`` (a copy of a migrated
metadata database, see ``conftest.py``) and ``SENTINEL_HOME``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from sentinel.simulator.run import SimulationOptions, simulate

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXPECTED = {"ingest_hourly", "reconcile_nightly", "detect_nightly", "stats_weekly"}

_BAG_PROBE = textwrap.dedent(
    """
    import json, sys
    from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    heavy = sorted(m for m in ("pandas", "duckdb", "great_expectations", "geopandas", "sklearn")
                   if m in sys.modules)
    out = {"errors": {k: v.splitlines()[-1] for k, v in bag.import_errors.items()},
           "heavy": heavy,
           "durations": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
           "dags": {}}
    for dag in bag.dags.values():
        out["dags"][dag.dag_id] = {
            "owner": dag.owner, "tags": sorted(dag.tags), "doc": bool(dag.doc_md),
            "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
            "schedule": str(getattr(dag.timetable, "expression", "")),
            "tasks": {t.task_id: {"retries": t.retries,
                                  "timeout": t.execution_timeout.total_seconds()
                                  if t.execution_timeout else None,
                                  "callback": bool(t.on_failure_callback)}
                      for t in dag.tasks}}
    print(json.dumps(out))
    """
)


def test_dagbag_imports_every_dag_quickly_without_a_database(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    env = airflow_env | {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        # a database that cannot be opened: a DAG file touching it at import would fail
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/missing/dir/airflow.db",
    }
    env.pop("SENTINEL_DAG_RETRIES", None)
    done = subprocess.run(
        [sys.executable, "-c", _BAG_PROBE, str(DAGS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    bag = json.loads(done.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    assert set(bag["dags"]) == EXPECTED
    assert bag["heavy"] == [], "DAG files must not import the data stack at parse time"
    assert bag["durations"] and all(s < 2.0 for s in bag["durations"].values()), bag["durations"]
    for dag_id, dag in bag["dags"].items():
        assert dag["owner"] == "sentinel-data-engineering", dag_id
        assert "sentinel" in dag["tags"] and len(dag["tags"]) >= 2, dag_id
        assert dag["doc"] and dag["catchup"] is False and dag["max_active_runs"] >= 1, dag_id
        for task_id, task in dag["tasks"].items():
            where = f"{dag_id}.{task_id}"
            assert task["timeout"] and task["timeout"] > 0, where
            assert task["callback"], where
            # the bulletin is not retried: a data-quality failure must not be retried away
            assert task["retries"] == (0 if task_id == "bulletin" else 2), where
    assert bag["dags"]["ingest_hourly"]["schedule"] == "0 * * * *"


DAY = dt.date(2025, 2, 9)  # last simulated day: an injected outbreak is under way


def _runs(
    env: dict[str, str], runs: list[tuple[str, str, dict[str, str] | None]], out: list[str]
) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "sentinel.dag_runner", json.dumps(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    results = [
        json.loads(line.removeprefix("RESULT "))
        for line in done.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert done.returncode == 0 and len(results) == len(runs), (done.stdout + done.stderr)[-3000:]
    out.append(done.stdout + done.stderr)  # dag.test() prints the task logs
    return results


def _snapshot(home: Path) -> dict[str, bytes]:
    root = home / "warehouse"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for name in ("visits", "syndrome_daily", "syndrome_age_daily", "alerts", "quarantine")
        for p in sorted((root / name).rglob("*.parquet"))
    }


def _identifiers(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT name, id_card_no, mobile FROM patients").all()
    finally:
        engine.dispose()
    return {str(v) for row in rows for v in row if v and len(str(v)) >= 2}


@pytest.mark.parametrize("his_kind", ["sqlite", "postgresql"])
def test_dags_run_on_simulated_sources_and_rerun_changes_nothing(
    his_kind: str, airflow_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "sentinel"
    home.mkdir()
    env = airflow_env | {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "SENTINEL_HOME": str(home),
        "SENTINEL_DAG_RETRIES": "0",
        "AIRFLOW_VAR_SENTINEL_HMAC_KEY": "dag-test-secret",
    }
    env.pop("SENTINEL_HMAC_KEY", None)
    sources = tmp_path / "sources"
    if his_kind == "sqlite":
        url = f"sqlite:///{sources / 'his.sqlite'}"
        simulate(SimulationOptions(out=sources, days=40, formats=("his",)))
        source = f'location = "{url}"'
    else:
        url = request.getfixturevalue("postgres_url")
        simulate(SimulationOptions(out=sources, days=40, formats=("his",), his_url=url))
        # the HIS URL comes from an Airflow connection, as in production
        env["AIRFLOW_CONN_HIS_DB"] = url.replace("postgresql+psycopg2://", "postgres://")
        source = 'connection = "his_db"'
    (home / "sentinel.toml").write_text(
        f'[pipeline]\nreconcile_days = 45\n\n[[pipeline.sources]]\nname = "his"\nkind = "sql"\n{source}\n',
        encoding="utf-8",
    )
    runs: list[tuple[str, str, dict[str, str] | None]] = [
        ("ingest_hourly", "2025-02-09T02:00:00+00:00", None),  # 10:00-11:00 in Shanghai
        ("reconcile_nightly", "2025-02-09T20:00:00+00:00", None),  # 04:00 on 02-10
        ("detect_nightly", "2025-02-09T21:00:00+00:00", {"day": DAY.isoformat()}),
    ]
    printed: list[str] = []
    first = _runs(env, runs, printed)
    for run in first:
        assert run["state"] == "success", run
        assert all(state == "success" for _, _, state in run["tasks"]), run
    detect = next(r for r in first if r["dag_id"] == "detect_nightly")
    assert any(task == "detect" and index == 0 for task, index, _ in detect["tasks"])

    from warehouse.store import Warehouse

    wh = Warehouse(home / "warehouse")
    visits = wh.read_table("visits")
    assert len(visits) > 40 * 1000
    batches = wh.read_table("batches")
    assert (batches["extracted"] == batches["loaded"] + batches["quarantined"]).all()
    alerts = wh.read_dates("alerts", DAY, DAY).to_pandas()
    truth = pd.read_csv(sources / "ground_truth.csv", dtype={"street_codes": str})
    ongoing = truth[(truth["start"] <= DAY.isoformat()) & (truth["end"] >= DAY.isoformat())]
    assert len(ongoing) == 1
    streets = set(ongoing["street_codes"].iloc[0].split(";"))
    hits = alerts[
        (alerts["syndrome"] == ongoing["syndrome"].iloc[0])
        & alerts["street_codes"].map(lambda c: bool(streets & set(c)))
    ]
    assert len(hits) >= 1, "the outbreak under way is among the day's alerts"
    report = home / "reports" / DAY.isoformat()
    assert (report / "bulletin.html").is_file() and (report / "bulletin.pdf").is_file()

    before = _snapshot(home)
    batch_ids = set(batches["batch_id"])
    again = _runs(env, runs, printed)
    assert [r["state"] for r in again] == ["success"] * 3
    assert _snapshot(home) == before
    assert set(wh.read_table("batches")["batch_id"]) == batch_ids

    # no identifier of the source reached Airflow's task logs or Sentinel's logs
    planted = _identifiers(url)
    assert planted
    logs = [*Path(env["AIRFLOW_HOME"], "logs").rglob("*"), *(home / "logs").rglob("*")]
    texts = printed + [p.read_text(encoding="utf-8", errors="ignore") for p in logs if p.is_file()]
    assert any("hourly_pulled" in t for t in texts) and any("alerts_published" in t for t in texts)
    leaked = {v for v in planted for t in texts if v in t}
    assert not leaked, f"{len(leaked)} identifiers in logs"


def test_a_day_failing_the_quality_gate_withholds_the_bulletin_and_tells_operators(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from sentinel.pipeline import ingest_window, load_reference
    from sentinel.settings import load_settings
    from tests.servers import smtp_server
    from transform.ingest import default_definitions
    from warehouse.store import Warehouse

    home = tmp_path / "sentinel"
    home.mkdir()
    sources = tmp_path / "sources"
    simulate(SimulationOptions(out=sources, days=40, formats=("his",)))
    with smtp_server() as smtp:
        (home / "sentinel.toml").write_text(
            "[notify]\n"
            f'operators = ["oncall@cdc.example"]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp.port}\n'
            'from_address = "sentinel@cdc.example"\n\n'
            '[pipeline]\n[[pipeline.sources]]\nname = "his"\nkind = "sql"\n'
            f'location = "sqlite:///{sources / "his.sqlite"}"\n',
            encoding="utf-8",
        )
        from dataclasses import replace

        settings = replace(load_settings(home, environ={}), hmac_key="k")
        load_reference(settings)
        ingest_window(settings, "his", dt.datetime(2024, 12, 1), dt.datetime(2025, 2, 12))
        # most facilities fall silent on the day: keep two facilities' visits only
        (part,) = (home / "warehouse" / "visits" / f"visit_date={DAY}").glob("*.parquet")
        table = pq.read_table(part)
        keep = sorted(set(table.column("facility_id").to_pylist()))[:2]
        rows = [f in keep for f in table.column("facility_id").to_pylist()]
        pq.write_table(table.filter(rows), part)
        Warehouse(settings.warehouse_dir).rebuild_syndrome_daily(
            [DAY], default_definitions().syndrome_names
        )
        env = airflow_env | {
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "SENTINEL_HOME": str(home),
            "SENTINEL_DAG_RETRIES": "0",
            "SENTINEL_HMAC_KEY": "k",
        }
        (run,) = _runs(
            env, [("detect_nightly", "2025-02-09T21:00:00+00:00", {"day": DAY.isoformat()})], []
        )
    states = {task: state for task, _, state in run["tasks"]}
    assert run["state"] == "failed"
    assert states["publish"] == states["scan"] == "success"  # alerts are still stored
    assert states["bulletin"] == "failed" and states["send"] == "upstream_failed"
    report = home / "reports" / DAY.isoformat()
    assert not (report / "bulletin.html").exists()
    notice = (report / "WITHHELD.txt").read_text(encoding="utf-8")
    assert "withheld" in notice and "facilit" in notice
    mails = [smtp.parsed(i) for i in range(len(smtp.messages))]
    assert mails, "the operators got no e-mail"
    body = "\n".join(m.get_body(("plain",)).get_content() for m in mails)  # type: ignore[union-attr]
    assert "detect_nightly" in body and "bulletin" in body and "withheld" in body
    assert all(m["To"] == "oncall@cdc.example" for m in mails)


def test_demo_runs_the_dags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sentinel.cli import main

    home = tmp_path / "home"
    assert main(["--home", str(home), "demo", "--airflow", "--days", "10"]) == 2
    assert "at least 30 days" in capsys.readouterr().err
    code = main(["--home", str(home), "demo", "--airflow", "--days", "30", "--detect-days", "1"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out[-2000:]
    for dag_id in EXPECTED:
        assert f"{dag_id} │" in out
    assert "failed" not in out
    assert (home / "reports" / "2025-01-30" / "bulletin.pdf").is_file()
    assert list((home / "reports" / "stats").glob("week-2025-01-30-*/stats.html"))


def test_the_analysis_day_comes_from_conf_then_the_latest_event_then_the_interval() -> None:
    from types import SimpleNamespace

    from sentinel.orchestration import analysis_day, event_days

    def event(day: str) -> SimpleNamespace:
        return SimpleNamespace(extra={"day": day, "dates": []})

    piled = {"asset": [event("2025-01-02"), event("2025-01-01"), SimpleNamespace(extra=None)]}
    context: dict[str, object] = {"triggering_asset_events": piled}
    assert event_days(context) == [dt.date(2025, 1, 1), dt.date(2025, 1, 2)]
    assert analysis_day(context) == dt.date(2025, 1, 2)
    context["dag_run"] = SimpleNamespace(conf={"day": "2024-12-31"})
    assert analysis_day(context) == dt.date(2024, 12, 31)
    # 20:00 UTC is 04:00 the next day in Shanghai: the day before that is analysed
    end = dt.datetime(2025, 1, 3, 20, tzinfo=dt.UTC)
    assert analysis_day({"data_interval_end": end}) == dt.date(2025, 1, 3)
    with pytest.raises(ValueError, match="no analysis day"):
        analysis_day({})
