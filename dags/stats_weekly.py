"""
### stats_weekly

Mondays at 06:00 (Asia/Shanghai): the leaders' brief of the week that ended on Sunday
(HTML, PDF, Excel and CSV), for each audience in `[pipeline] stats_audiences`: `internal`
(exact counts, stays in the CDC) and `public` (counts below 5 suppressed). Re-running
rewrites the same files.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from sentinel.orchestration import DEFAULT_ARGS, START, TIMEZONE, analysis_day, settings


@dag(
    dag_id="stats_weekly",
    schedule=CronTriggerTimetable("0 6 * * 1", timezone=TIMEZONE, interval=dt.timedelta(days=7)),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sentinel", "report", "weekly"],
    doc_md=__doc__,
)
def stats_weekly() -> None:
    @task
    def brief() -> dict[str, Any]:
        from sentinel.pipeline import weekly_stats

        return weekly_stats(settings(), analysis_day(get_current_context()))

    brief()


stats_weekly()
