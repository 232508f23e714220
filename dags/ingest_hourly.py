"""
### ingest_hourly

Every hour: pull each configured source (`[[pipeline.sources]]` in `sentinel.toml`; one
mapped task per source) for the hour's data interval, de-identify, classify, validate
(Great Expectations) and load into the warehouse. Records that cannot be used go to the
quarantine with their reason; each pull reconciles (extracted = loaded + quarantined).

- **Window**: records changed in `(start − lookback_hours, end]`, latest change ≤ end (file
  sources: files that landed in the hour). A run loads the same whatever time it runs, so
  backfills equal live runs.
- **Re-runs**: the batch id is derived from source and window; re-running or clearing a
  task leaves the warehouse unchanged.
- **Emits** the asset `sentinel_visits` with the visit dates touched.
- **Then** checks freshness: a source without data for `source_late_hours` or a facility
  silent for a day is reported to the operators (once a day each).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from sentinel.orchestration import (
    DEFAULT_ARGS,
    START,
    TIMEZONE,
    VISITS,
    WAREHOUSE_POOL,
    connection_uri,
    settings,
)


@dag(
    dag_id="ingest_hourly",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone=TIMEZONE),
    start_date=START,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["sentinel", "ingest"],
    doc_md=__doc__,
)
def ingest_hourly() -> None:
    @task(pool=WAREHOUSE_POOL)
    def sources() -> list[str]:
        from sentinel.pipeline import load_reference, source_names

        load_reference(settings())  # streets and facilities of the area set
        return source_names(settings())

    @task(map_index_template="{{ source_name }}", pool=WAREHOUSE_POOL)
    def pull(name: str) -> dict[str, Any]:
        from sentinel.pipeline import ingest_window

        ctx = get_current_context()
        ctx["source_name"] = name  # type: ignore[typeddict-unknown-key]
        return ingest_window(
            settings(),
            name,
            ctx["data_interval_start"],
            ctx["data_interval_end"],
            lookup=connection_uri,
        )

    @task(outlets=[VISITS])
    def touched(results: list[dict[str, Any]]) -> list[str]:
        from sentinel.pipeline import touched_dates

        dates = touched_dates(list(results))
        get_current_context()["outlet_events"][VISITS].extra = {"dates": dates}
        return dates

    @task
    def freshness() -> int:
        from sentinel.pipeline import report_lateness

        return report_lateness(settings(), get_current_context()["data_interval_end"])

    touched(pull.expand(name=sources())) >> freshness()


ingest_hourly()
