"""Fixtures for tests that run Airflow for real: a migrated metadata database per test.

``airflow db migrate`` runs once per session into a template ``AIRFLOW_HOME``
(:func:`airflow_home_template`); each test gets its own copy (:func:`airflow_env`), so
tests never share DAG runs, logs or task state. Run Airflow in a subprocess with that
environment, e.g.::

    def test_my_dag(airflow_env: dict[str, str], tmp_path: Path) -> None:
        dags = Path(airflow_env["AIRFLOW__CORE__DAGS_FOLDER"])
        (dags / "my_dag.py").write_text(...)
        subprocess.run([sys.executable, "-c", "..."], env=airflow_env, check=True)

The project's ``airflow.cfg`` is the configuration (``AIRFLOW_CONFIG``), so tests see the
deployment's defaults (time zone, LocalExecutor, SQLite); ``AIRFLOW_*`` variables of the
calling shell are dropped, so a developer's own Airflow set-up cannot leak in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
_MIGRATED = "migrated.ok"


def airflow_environ(home: Path, dags: Path) -> dict[str, str]:
    """The environment of an Airflow process using ``home`` and the DAGs in ``dags``.

    Keys set: ``AIRFLOW_HOME``, ``AIRFLOW_CONFIG`` (the repository's ``airflow.cfg``),
    ``AIRFLOW__CORE__DAGS_FOLDER``, ``AIRFLOW__CORE__LOAD_EXAMPLES=False``; everything
    else is the current environment without its ``AIRFLOW*`` variables.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    return env


@pytest.fixture(scope="session")
def airflow_home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``AIRFLOW_HOME`` whose metadata database is migrated (once per session).

    Do not run Airflow in it: copy it (:func:`airflow_env` does).
    """
    home = tmp_path_factory.getbasetemp() / "airflow_home_template"
    if (home / _MIGRATED).is_file():  # already built by another conftest importing this one
        return home
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_environ(home, home / "dags")
    try:
        done = subprocess.run(
            [str(AIRFLOW), "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"`airflow db migrate` did not run: {exc}")
    if done.returncode != 0 or not (home / "airflow.db").is_file():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        pytest.fail(f"`airflow db migrate` failed (exit {done.returncode}):\n{tail}")
    (home / _MIGRATED).write_text("ok\n")
    return home


@pytest.fixture
def airflow_env(airflow_home_template: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for Airflow subprocesses with a fresh copy of the migrated home.

    ``AIRFLOW_HOME`` is ``tmp_path/"airflow"``; ``AIRFLOW__CORE__DAGS_FOLDER`` is an empty
    ``tmp_path/"dags"`` (write DAG files there, or point the key at another folder, such
    as the repository's ``dags/``). Add keys as needed (``SENTINEL_HOME``,
    ``SENTINEL_DAG_RETRIES=0``…) before starting a process.
    """
    home = tmp_path / "airflow"
    shutil.copytree(airflow_home_template, home, ignore=shutil.ignore_patterns(_MIGRATED))
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    return airflow_environ(home, dags)
