"""CeleryExecutor scale-out: PostgreSQL metadata, Redis broker, two Celery workers.

Every Airflow component runs as its own process, as in a deployment (api-server,
scheduler, dag-processor, two ``airflow celery worker``), against a fresh PostgreSQL
database and Redis database 5. The data is a simulated city (16 districts, 215 streets)
whose facilities are split over two HIS databases, so ``reconcile_nightly`` maps ``repull``
over two sources and ``detect_nightly`` maps ``detect`` over 16 district shards. The test
checks that the runs succeed, that mapped task instances ran on both workers, and that the
warehouse holds the day's visits and alerts.

Both workers share this machine, so each gets its own ``[core] hostname_callable`` (a
two-line module returning ``w1`` or ``w2``): the task instances' ``hostname`` then says
which worker ran them, as the machine name does when workers run on separate machines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _ensure_server

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
REDIS_DB = 5  # not used by any other test or by the demo
START = dt.date(2025, 3, 1)
DAYS = 21
DAY = START + dt.timedelta(days=DAYS - 2)  # the analysis day: the last complete day
# The city's rate scale is 4.6 (every outpatient visit, ~300,000 a day); 0.05 keeps the
# city's 215 streets and 264 facilities at ~3,500 visits a day, so 21 days simulate in
# seconds and detection has three weeks of history.
CITY_RATE = 0.05
WORKERS = ("w1", "w2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    if not path.is_file():
        return f"({path.name}: no file)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return f"--- {path.name} ---\n" + "\n".join(text[-lines:])


@dataclass
class Cluster:
    """The running Airflow components and how to reach their REST API."""

    base_url: str
    airflow_home: Path
    sentinel_home: Path
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the REST API (``[core] simple_auth_manager_all_admins``: no login)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def diagnostics(self) -> str:
        """Tails of every component's output and of the failed tasks' logs."""
        parts = [_tail(p) for p in sorted(self.logs.glob("*.log"))]
        task_logs = sorted((self.airflow_home / "logs").rglob("*.log"))
        parts += [_tail(p, 40) for p in task_logs if "ERROR" in p.read_text(errors="replace")]
        return "\n".join(parts)

    def check_alive(self) -> None:
        """Fail at once, with the component's output, when a component has died."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}\n{self.diagnostics()}")

    def run_dag(self, dag_id: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Trigger a run, wait for it to finish; returns the run as the API reports it."""
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        run_id = run["dag_run_id"]
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            run = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                self.timings[dag_id] = round(time.monotonic() - began, 1)
                return dict(run)
            self.check_alive()
            time.sleep(2)
        pytest.fail(
            f"{dag_id} run {run_id} did not finish in {timeout:.0f} s\n{self.diagnostics()}"
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones one by one."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=500"
        return list(self.request("GET", path)["task_instances"])


def _simulate_city(out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Simulate the city's HIS (SQLite) at a reduced visit rate; returns its path."""
    from sentinel.simulator import run

    monkeypatch.setitem(run.RATE_SCALE, "city", CITY_RATE)
    run.simulate(
        run.SimulationOptions(out=out, days=DAYS, start=START, scale="city", formats=("his",))
    )
    return out / "his.sqlite"


def _split_his(his: Path, target: Path, districts: set[str]) -> None:
    """Copy ``his`` keeping only the facilities in ``districts`` (one hospital group's HIS)."""
    shutil.copy(his, target)
    con = sqlite3.connect(target)
    try:
        marks = ",".join("?" * len(districts))
        con.execute(
            "CREATE TEMP TABLE other AS SELECT facility_id FROM facilities "
            f"WHERE substr(street_code, 1, 6) NOT IN ({marks})",
            sorted(districts),
        )
        regs = "SELECT reg_id FROM registrations WHERE facility_id IN (SELECT * FROM other)"
        for table in ("vital_signs", "diagnoses"):
            con.execute(f"DELETE FROM {table} WHERE reg_id IN ({regs})")
        for table in ("registrations", "patients", "facilities"):
            con.execute(f"DELETE FROM {table} WHERE facility_id IN (SELECT * FROM other)")
        con.commit()
    finally:
        con.close()


def _sentinel_home(home: Path, his: Path) -> None:
    """Register the city as an area set and write ``sentinel.toml`` with two HIS sources."""
    from geo.areas import build_city_area_set
    from geo.loading import write_area_set

    area = build_city_area_set(0)  # the simulator's city (same seed)
    write_area_set(area, home / "geo" / "city")
    districts = sorted({str(c)[:6] for c in area.codes})
    halves = {"his_west": set(districts[:8]), "his_east": set(districts[8:])}
    sources = ""
    for name, keep in halves.items():
        target = home / "sources" / f"{name}.sqlite"
        target.parent.mkdir(parents=True, exist_ok=True)
        _split_his(his, target, keep)
        sources += f'[[pipeline.sources]]\nname = "{name}"\nkind = "sql"\n'
        sources += f'location = "sqlite:///{target}"\n'
    # A lax detector (EARS C1 at alpha 0.5: count above the 7-day mean) so the day surely
    # has alerts; the test is about where tasks run, not about detection quality.
    (home / "sentinel.toml").write_text(
        f"""area_set = "city"

[detect]
method = "ears_c1"
params = {{ baseline = 7, alpha = 0.5 }}
fallback_method = "ears_c1"
fallback_params = {{ baseline = 7, alpha = 0.5 }}
age_groups = false
history_days = 28

[scan]
study_days = {DAYS}
reps = 99

[pipeline]
reconcile_days = 30

{sources}""",
        encoding="utf-8",
    )


def _airflow_cfg(postgres_url: str, api_port: int) -> str:
    database = postgres_url.split("://", 1)[1]
    return f"""[core]
executor = CeleryExecutor
dags_folder = {REPO / "dags"}
load_examples = False
default_timezone = Asia/Shanghai
dags_are_paused_at_creation = False
parallelism = 8
max_active_tasks_per_dag = 8
fernet_key = {_fernet_key()}
simple_auth_manager_all_admins = True

[database]
sql_alchemy_conn = postgresql+psycopg2://{database}
# the API server's async engine: psycopg 3 (the default driver, asyncpg, is not installed)
sql_alchemy_conn_async = postgresql+psycopg://{database}

[celery]
broker_url = redis://127.0.0.1:6379/{REDIS_DB}
result_backend = db+postgresql+psycopg2://{database}
worker_concurrency = 2

[api]
host = 127.0.0.1
port = {api_port}
base_url = http://127.0.0.1:{api_port}
secret_key = {secrets.token_hex(16)}
workers = 1

[api_auth]
jwt_secret = {secrets.token_hex(16)}

[scheduler]
# no scheduled or asset-triggered runs: only the runs this test triggers
use_job_schedule = False

[logging]
logging_level = INFO
"""


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _flush_redis() -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()


@pytest.fixture
def cluster(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    """The Airflow components on a fresh PostgreSQL database, killed at the end."""
    _ensure_server(6379, "Redis")  # starts it through .ci/services, or fails loudly
    _flush_redis()
    began = time.monotonic()
    api_port = _free_port()
    home = Cluster(
        base_url=f"http://127.0.0.1:{api_port}",
        airflow_home=tmp_path / "airflow",
        sentinel_home=tmp_path / "sentinel",
        logs=tmp_path / "processes",
    )
    for folder in (home.airflow_home, home.sentinel_home, home.logs):
        folder.mkdir()
    cfg = home.airflow_home / "airflow.cfg"
    cfg.write_text(_airflow_cfg(postgres_url, api_port), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SENTINEL_"))}
    env |= {
        "AIRFLOW_HOME": str(home.airflow_home),
        "AIRFLOW_CONFIG": str(cfg),
        "SENTINEL_HOME": str(home.sentinel_home),
        "SENTINEL_HMAC_KEY": secrets.token_hex(16),
        "SENTINEL_DAG_RETRIES": "0",
    }
    hosts = tmp_path / "pymods"
    hosts.mkdir()
    (hosts / "sentinel_test_host.py").write_text(
        "import os\n\n\ndef hostname():\n    return os.environ['SENTINEL_TEST_WORKER']\n"
    )

    def start(name: str, args: list[str], extra: dict[str, str] | None = None) -> None:
        with (home.logs / f"{name}.log").open("wb") as out:
            home.processes[name] = subprocess.Popen(
                [str(AIRFLOW), *args],
                env=env | (extra or {}),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killed with all its children
            )

    try:
        start("migrate", ["db", "migrate"])
        _sentinel_home(home.sentinel_home, _simulate_city(tmp_path / "city", monkeypatch))
        home.timings["simulate city"] = round(time.monotonic() - began, 1)
        if home.processes["migrate"].wait(timeout=180) != 0:
            pytest.fail("airflow db migrate failed\n" + _tail(home.logs / "migrate.log", 40))
        del home.processes["migrate"]
        # db migrate ran meanwhile: this is the wait for it after the simulation
        waited = time.monotonic() - began - home.timings["simulate city"]
        home.timings["db migrate (rest)"] = round(max(waited, 0.0), 1)
        began = time.monotonic()
        start("api-server", ["api-server", "--port", str(api_port)])
        start("scheduler", ["scheduler"])
        start("dag-processor", ["dag-processor"])
        for worker in WORKERS:
            start(
                worker,
                ["celery", "worker", "-H", f"{worker}@%h", "--concurrency", "2"],
                {
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "sentinel_test_host.hostname",
                    "SENTINEL_TEST_WORKER": worker,
                    "PYTHONPATH": os.pathsep.join(
                        filter(None, [str(hosts), env.get("PYTHONPATH")])
                    ),
                },
            )
        _wait_until_ready(home)
        home.timings["components up"] = round(time.monotonic() - began, 1)
        yield home
    finally:
        _stop(home.processes)
        _flush_redis()
        print("timings (s):", json.dumps(home.timings))


def _wait_until_ready(home: Cluster, timeout: float = 120) -> None:
    """Wait for the API, the parsed DAGs and both workers' greetings."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        home.check_alive()
        try:
            home.request("GET", "/api/v2/dags/detect_nightly")
            home.request("GET", "/api/v2/dags/reconcile_nightly")
        except (urllib.error.URLError, ConnectionError):
            time.sleep(1)
            continue
        ready = [w for w in WORKERS if "ready." in (home.logs / f"{w}.log").read_text()]
        if len(ready) == len(WORKERS):
            return
        time.sleep(1)
    pytest.fail(f"Airflow did not come up in {timeout:.0f} s\n{home.diagnostics()}")


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process group this test started; SIGKILL the groups still up after 20 s."""
    for proc in processes.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        if proc.poll() is None:  # the leader still holds the group id: no reuse possible
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
@pytest.mark.servers
def test_mapped_tasks_run_on_both_celery_workers(cluster: Cluster) -> None:
    from warehouse.store import Warehouse

    # reconcile at 02:00 the day after DAY: re-pulls 30 days, the whole simulation
    night = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(2), dt.UTC)
    night -= dt.timedelta(hours=8)  # 02:00 Asia/Shanghai
    reconcile = cluster.run_dag(
        "reconcile_nightly",
        {"dag_run_id": "reconcile_test", "logical_date": night.isoformat()},
        timeout=120,
    )
    detect = cluster.run_dag(
        "detect_nightly",
        {"dag_run_id": "detect_test", "logical_date": None, "conf": {"day": DAY.isoformat()}},
        timeout=240,
    )
    runs = {"reconcile_nightly": reconcile, "detect_nightly": detect}
    failed = [d for d, r in runs.items() if r["state"] != "success"]
    assert not failed, f"runs failed: {failed}\n{cluster.diagnostics()}"

    tis = cluster.task_instances("reconcile_nightly", "reconcile_test")
    tis += cluster.task_instances("detect_nightly", "detect_test")
    pulls = [t for t in tis if t["task_id"] == "repull"]
    shards = [t for t in tis if t["task_id"] == "detect"]
    assert len(pulls) == 2 and len(shards) == 16
    assert all(t["state"] == "success" for t in tis)
    for task in ("repull", "detect", "bulletin"):
        took = sorted(t["duration"] or 0.0 for t in tis if t["task_id"] == task)
        cluster.timings[f"task {task} (max)"] = round(took[-1], 1)
    hosts = [t["hostname"] for t in pulls + shards]
    print("mapped task instances per worker:", {w: hosts.count(w) for w in sorted(set(hosts))})
    assert set(hosts) == set(WORKERS), f"mapped tasks ran on {sorted(set(hosts))}"
    assert {t["hostname"] for t in shards} == set(WORKERS)

    wh = Warehouse(cluster.sentinel_home / "warehouse")
    visits = wh.read_dates("visits", DAY, DAY).to_pandas()
    assert len(visits) > 1000 and visits["street_code"].astype(str).str[:6].nunique() == 16
    alerts = wh.read_dates("alerts", DAY, DAY).to_pandas()
    temporal = alerts[alerts["detector"] == "ears_c1"]
    alert_districts = {str(c)[:6] for codes in temporal["street_codes"] for c in codes}
    assert len(alert_districts) >= 8, f"temporal alerts in districts {sorted(alert_districts)}"
    assert (cluster.sentinel_home / "reports" / DAY.isoformat() / "bulletin.pdf").is_file()
