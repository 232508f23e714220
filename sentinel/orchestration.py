"""What every Sentinel DAG shares: defaults, settings, secrets and the failure callback.

Imported only by the DAG files in ``dags/`` (the one library module that imports Airflow;
Airflow 3 does not put the DAG folder on ``sys.path``, so shared DAG code lives here).
Imports of the rest of Sentinel happen inside the functions, so parsing a DAG file stays
fast and touches no database.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import Asset

log = logging.getLogger("sentinel.dags")

TIMEZONE = "Asia/Shanghai"
START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # 00:00 Shanghai
"""First logical date (catchup is off: a new deployment starts now; backfill for history)."""

VISITS = Asset(name="sentinel_visits", uri="file:///sentinel/warehouse/visits")
"""Updated by every pull: its events' extra holds the visit dates touched."""
RECONCILED = Asset(name="sentinel_reconciled", uri="file:///sentinel/warehouse/reconciled")
"""Updated when a night's reconciliation is done: extra ``{"day": …, "dates": […]}``."""


def on_failure(context: dict[str, Any]) -> None:
    """Task failure callback: e-mail/webhook the operators (never raises)."""
    try:
        from sentinel.operations import event_from_context, notify_operators

        problems = notify_operators(settings().notify, event_from_context(context))
        for p in problems:
            log.warning("failure notification not delivered: %s", p)
    except Exception as exc:  # a failing callback must not hide the task's own failure
        log.warning("failure notification not delivered: %s", exc)


WAREHOUSE_POOL = os.environ.get("SENTINEL_WAREHOUSE_POOL", "default_pool")
"""Pool of the tasks that write the warehouse. On one machine (or a shared disk whose
``flock`` works) the warehouse's writer lock serialises writes and the default pool is
fine; with the warehouse on NFS create a pool of 1 slot and name it here."""

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "sentinel-data-engineering",
    # SENTINEL_DAG_RETRIES=0 for tests and debugging: a failure shows at once
    "retries": int(os.environ.get("SENTINEL_DAG_RETRIES", "2")),
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=30),
    "execution_timeout": dt.timedelta(minutes=45),
    "on_failure_callback": on_failure,
}


def settings() -> Any:
    """Sentinel's settings, with the HMAC key from an Airflow variable when set.

    ``SENTINEL_HOME`` (environment) says where the warehouse and ``sentinel.toml`` are; the
    key comes from ``AIRFLOW_VAR_SENTINEL_HMAC_KEY`` (or a secrets backend), else from
    ``SENTINEL_HMAC_KEY``.
    """
    from dataclasses import replace

    from airflow.sdk import Variable

    from sentinel.logs import configure_logging
    from sentinel.settings import load_settings

    base = load_settings()
    configure_logging(base.logs_dir)  # Sentinel's own log beside Airflow's task logs
    key = Variable.get("sentinel_hmac_key", default=None)
    return replace(base, hmac_key=key) if key else base


def connection_uri(conn_id: str) -> str:
    """The URI of an Airflow connection (``AIRFLOW_CONN_<ID>`` or a secrets backend)."""
    from airflow.sdk import Connection

    return str(Connection.get(conn_id).get_uri())


def event_days(context: dict[str, Any]) -> list[dt.date]:
    """The days named by the run's triggering asset events (``extra["day"]``), sorted."""
    days = set()
    for asset_events in (context.get("triggering_asset_events") or {}).values():
        for event in asset_events:
            extra = getattr(event, "extra", None) or {}
            if extra.get("day"):
                days.add(dt.date.fromisoformat(str(extra["day"])))
    return sorted(days)


def analysis_day(context: dict[str, Any], default_offset_days: int = 1) -> dt.date:
    """The day a nightly run analyses.

    ``day`` in the run's conf wins (manual runs, ``dag.test``); then the latest day of the
    triggering asset events (several reconciliations may trigger one run); then the local date of the data interval's end minus
    ``default_offset_days``.
    """
    conf = (context.get("dag_run") and context["dag_run"].conf) or {}
    if conf.get("day"):
        return dt.date.fromisoformat(str(conf["day"]))
    days = event_days(context)
    if days:
        return max(days)
    end = context.get("data_interval_end") or context.get("logical_date")
    if end is None:
        raise ValueError("no analysis day: give conf {'day': 'YYYY-MM-DD'}")
    from zoneinfo import ZoneInfo

    local = end.astimezone(ZoneInfo(TIMEZONE))
    return local.date() - dt.timedelta(days=default_offset_days)
