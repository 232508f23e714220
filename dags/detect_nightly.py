"""
### detect_nightly

Runs when `reconcile_nightly` has finished (asset `sentinel_reconciled`), for the day it
names; a manual run takes `{"day": "YYYY-MM-DD"}` as conf.

1. rebuild `syndrome_daily` for the analysis day and the dates reconciliation touched;
2. temporal detectors for the analysis day, one mapped task per shard of streets
   (districts; `[pipeline] shard_by`), each staging its alerts; one task publishes them;
3. the space-time scan of the day;
4. earlier days (within `reconcile_days`) whose counts changed are analysed again;
5. the bulletin: a data-quality gate first (a failure withholds the bulletin and says
   why), then HTML + PDF, then e-mail and webhook as `[notify]` configures (once per day).

Every step replaces the day's own outputs: re-running the run, or clearing any task,
leaves the warehouse as it was.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from sentinel.orchestration import (
    DEFAULT_ARGS,
    RECONCILED,
    START,
    WAREHOUSE_POOL,
    analysis_day,
    event_days,
    settings,
)


def _day() -> Any:
    return analysis_day(get_current_context())


@dag(
    dag_id="detect_nightly",
    schedule=[RECONCILED],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sentinel", "detect", "report", "nightly"],
    doc_md=__doc__,
)
def detect_nightly() -> None:
    @task
    def plan() -> dict[str, Any]:
        from sentinel.pipeline import days_to_redo

        ctx = get_current_context()
        day = analysis_day(ctx)
        dates: list[str] = []
        for events in (ctx.get("triggering_asset_events") or {}).values():
            for event in events:
                dates += list((getattr(event, "extra", None) or {}).get("dates", []))
        # several reconciliations may trigger one run: the latest day is analysed here,
        # the earlier ones are analysed again by `redo`
        earlier = [d.isoformat() for d in event_days(ctx) if d < day]
        return {
            "day": day.isoformat(),
            "rebuild": sorted({day.isoformat(), *dates, *earlier}),
            "redo": sorted({*days_to_redo(settings(), day, dates), *earlier}),
        }

    @task(pool=WAREHOUSE_POOL)
    def rebuild(p: dict[str, Any]) -> list[str]:
        from sentinel.pipeline import rebuild_daily

        return rebuild_daily(settings(), p["rebuild"])

    @task
    def shards() -> list[str]:
        from sentinel.pipeline import detection_shards

        return detection_shards(settings())

    @task(map_index_template="{{ shard }}")
    def detect(shard: str) -> str:
        from sentinel.pipeline import detect_shard

        get_current_context()["shard"] = shard  # type: ignore[typeddict-unknown-key]
        return detect_shard(settings(), _day(), shard)

    @task(pool=WAREHOUSE_POOL)
    def publish(staged: list[str]) -> dict[str, Any]:
        from sentinel.pipeline import publish_alerts

        return publish_alerts(settings(), _day(), list(staged))

    @task(pool=WAREHOUSE_POOL)
    def scan() -> dict[str, Any]:
        from sentinel.pipeline import scan_day

        return scan_day(settings(), _day())

    @task(pool=WAREHOUSE_POOL)
    def redo(p: dict[str, Any]) -> dict[str, Any]:
        from sentinel.pipeline import mark_analysed, redo_days

        done = redo_days(settings(), p["redo"])
        mark_analysed(settings(), [_day()])
        return done

    @task(retries=0)
    def bulletin() -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from sentinel.pipeline import PublicationWithheld, render_day_bulletin

        try:
            return render_day_bulletin(settings(), _day())
        except PublicationWithheld as exc:  # data-quality failure: no retry, say why
            raise AirflowFailException(str(exc)) from None

    @task
    def send(paths: dict[str, Any]) -> dict[str, Any]:
        from sentinel.pipeline import send_day_bulletin

        return send_day_bulletin(settings(), _day(), paths.get("pdf"))

    p = plan()
    published = publish(detect.expand(shard=shards()))
    rebuild(p) >> published
    scanned = scan()
    published >> scanned
    redone = redo(p)
    scanned >> redone
    rendered = bulletin()
    redone >> rendered
    send(rendered)


detect_nightly()
