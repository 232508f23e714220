"""`sentinel demo --airflow`: the same district, run through the real Airflow DAGs.

Simulates the district's HIS, points a ``[pipeline]`` source at it, migrates an Airflow
metadata database under ``$SENTINEL_HOME/airflow`` and runs the DAGs with ``dag.test()``
(no scheduler or server needed): ``reconcile_nightly`` once over the whole period (the
history), ``ingest_hourly`` for the last day's office hours, ``detect_nightly`` for each
of the last ``detect_days`` days, ``stats_weekly`` for the last week. Airflow runs in a
subprocess (``python -m sentinel.dag_runner``) with its own environment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table

from sentinel.console import console, progress_bar, simulate_with_progress
from sentinel.errors import SentinelError, UsageError
from sentinel.logs import configure_logging, log_event
from sentinel.settings import Settings
from sentinel.simulator.run import SimulationOptions

log = logging.getLogger("sentinel.demo")

REPO = Path(__file__).resolve().parents[1]
DEMO_KEY = "sentinel-airflow-demo-key"


def _airflow_env(settings: Settings) -> dict[str, str]:
    home = (settings.home / "airflow").absolute()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SENTINEL_HOME": str(settings.home.absolute()),
        "SENTINEL_DAG_RETRIES": "0",
        "AIRFLOW_VAR_SENTINEL_HMAC_KEY": settings.hmac_key or DEMO_KEY,
    }


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise SentinelError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def _write_settings(settings: Settings, his: Path, days: int) -> None:
    file = settings.home / "sentinel.toml"
    if file.exists() and "[pipeline]" in file.read_text(encoding="utf-8"):
        return
    text = file.read_text(encoding="utf-8") if file.exists() else ""
    file.write_text(
        text
        + f"\n[pipeline]\nreconcile_days = {days + 2}\n\n[[pipeline.sources]]\n"
        + f'name = "his"\nkind = "sql"\nlocation = "sqlite:///{his.absolute()}"\n',
        encoding="utf-8",
    )


def _utc(day: dt.date, hour: int) -> str:
    local = dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo("Asia/Shanghai"))
    return local.astimezone(dt.UTC).isoformat()


def run_airflow_demo(
    settings: Settings, days: int = 60, seed: int = 0, detect_days: int = 3
) -> list[dict[str, Any]]:
    """Simulate ``days`` days and run the DAGs over them; return the runs' results."""
    if days < 30:
        raise UsageError(f"--airflow needs at least 30 days of history, got --days {days}")
    configure_logging(settings.logs_dir)
    sources = settings.home / "demo" / "sources"
    opts = SimulationOptions(out=sources, days=days, seed=seed, formats=("his",))
    console.rule("[bold]1 · Simulate the district's clinical systems")
    simulate_with_progress(opts)
    settings.home.mkdir(parents=True, exist_ok=True)
    _write_settings(settings, sources / "his.sqlite", days)
    env = _airflow_env(settings)
    last = opts.start + dt.timedelta(days=days - 1)
    runs: list[tuple[str, str, dict[str, str] | None]] = [
        ("reconcile_nightly", _utc(last + dt.timedelta(days=1), 4), None),
        ("ingest_hourly", _utc(last, 10), None),
        *(
            ("detect_nightly", _utc(d + dt.timedelta(days=1), 5), {"day": d.isoformat()})
            for d in (last - dt.timedelta(days=k) for k in range(detect_days - 1, -1, -1))
        ),
        ("stats_weekly", _utc(last + dt.timedelta(days=1), 6), None),
    ]
    console.rule("[bold]2 · Run the Airflow DAGs (dag.test, metadata in SQLite)")
    results: list[dict[str, Any]] = []
    with progress_bar() as bar:
        task = bar.add_task("Airflow", total=len(runs) + 1, note="airflow db migrate")
        airflow = str(Path(sys.executable).with_name("airflow"))
        _run([airflow, "db", "migrate"], env, "airflow db migrate")
        bar.update(task, advance=1)
        for run in runs:
            bar.update(task, note=f"{run[0]} {(run[2] or {}).get('day', run[1])}")
            out = _run(
                [sys.executable, "-m", "sentinel.dag_runner", json.dumps([run])], env, run[0]
            )
            results += [
                json.loads(line.removeprefix("RESULT "))
                for line in out.splitlines()
                if line.startswith("RESULT ")
            ]
            bar.update(task, advance=1)
    table = Table(title="DAG runs (dag.test)")
    for col in ("DAG", "logical date (UTC)", "state", "tasks"):
        table.add_column(col)
    for r in results:
        tasks = r["tasks"]
        ok = sum(1 for t in tasks if t[2] == "success")
        table.add_row(str(r["dag_id"]), str(r["logical"]), str(r["state"]), f"{ok}/{len(tasks)} ok")
    console.print(table)
    failed = [r for r in results if r["state"] != "success"]
    log_event(log, "airflow_demo_finished", runs=len(results), failed=len(failed))
    console.print(
        f"Warehouse: {settings.warehouse_dir} · bulletins: {settings.home / 'reports'} · "
        f"Airflow home: {env['AIRFLOW_HOME']}"
    )
    for notice in sorted((settings.home / "reports").glob("*/WITHHELD.txt")):
        console.print(notice.read_text(encoding="utf-8").strip())
    if failed:
        what = [
            f"{r['dag_id']} ({', '.join(str(t[0]) for t in r['tasks'] if t[2] == 'failed')})"
            for r in failed
        ]
        raise SentinelError(f"{len(failed)} DAG run(s) failed: {'; '.join(what)}")
    return results
