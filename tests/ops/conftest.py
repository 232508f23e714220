"""The ops tests run a real Airflow task: they share the DAG tests' Airflow fixtures."""

from __future__ import annotations

from tests.dags.conftest import airflow_env, airflow_home_template

__all__ = ["airflow_env", "airflow_home_template"]
