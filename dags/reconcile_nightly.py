"""
### reconcile_nightly

At 04:00 (Asia/Shanghai) each night, after the facilities that upload in a nightly batch
(around 02:00) have delivered: re-pull the last `reconcile_days` (setting, default
7) of changes from every source, to catch records that arrived late or were corrected
after the hourly pulls. One mapped task per source; what changed (new and replaced visits
per visit date) is logged. Then emits the asset `sentinel_reconciled` with the analysis
day (yesterday), which starts `detect_nightly`.

Re-runs are safe: the pull's batch id comes from source and window, and the visits upsert
keeps the latest version of every visit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from sentinel.orchestration import (
    DEFAULT_ARGS,
    RECONCILED,
    START,
    TIMEZONE,
    WAREHOUSE_POOL,
    analysis_day,
    connection_uri,
    settings,
)


@dag(
    dag_id="reconcile_nightly",
    schedule=CronTriggerTimetable("0 4 * * *", timezone=TIMEZONE, interval=dt.timedelta(days=1)),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sentinel", "ingest", "nightly"],
    doc_md=__doc__,
)
def reconcile_nightly() -> None:
    @task
    def sources() -> list[str]:
        from sentinel.pipeline import source_names

        return source_names(settings())

    @task(map_index_template="{{ source_name }}", pool=WAREHOUSE_POOL)
    def repull(name: str) -> dict[str, Any]:
        from sentinel.pipeline import reconcile_source

        ctx = get_current_context()
        ctx["source_name"] = name  # type: ignore[typeddict-unknown-key]
        return reconcile_source(settings(), name, ctx["data_interval_end"], lookup=connection_uri)

    @task(outlets=[RECONCILED])
    def reconciled(results: list[dict[str, Any]]) -> dict[str, Any]:
        from sentinel.pipeline import touched_dates

        ctx = get_current_context()
        extra = {"day": analysis_day(ctx).isoformat(), "dates": touched_dates(list(results))}
        ctx["outlet_events"][RECONCILED].extra = extra
        return extra

    reconciled(repull.expand(name=sources()))


reconcile_nightly()
