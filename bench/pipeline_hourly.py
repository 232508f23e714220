"""Hourly pulls against one pull per day: the price of ``ingest_hourly``'s granularity.

Simulates the district's HIS (SQLite), then loads the same days twice into fresh
warehouses in this process: once as 24 hourly windows a day (what ``ingest_hourly`` runs,
through :func:`sentinel.pipeline.ingest_window`), once as one window a day (the baseline).
Reported: seconds per hourly window (median, p95), seconds per day both ways, the ratio,
and that both warehouses hold the same visits.

Run: .venv/bin/python bench/pipeline_hourly.py [--days 3] [--out bench/results/pipeline_hourly.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sentinel.pipeline import ingest_window, load_reference
from sentinel.settings import Settings, load_settings
from sentinel.simulator.run import SimulationOptions, simulate
from warehouse.store import Warehouse


def _settings(home: Path, his: Path) -> Settings:
    home.mkdir(parents=True)
    (home / "sentinel.toml").write_text(
        f'[pipeline]\n[[pipeline.sources]]\nname = "his"\nkind = "sql"\nlocation = "sqlite:///{his}"\n',
        encoding="utf-8",
    )
    settings = replace(load_settings(home, environ={}), hmac_key="bench-key")
    load_reference(settings)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pipeline_hourly.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        simulate(SimulationOptions(out=root / "sources", days=30, formats=("his",)))
        his = root / "sources" / "his.sqlite"
        first = dt.datetime(2025, 1, 20)
        hourly = _settings(root / "hourly", his)
        daily = _settings(root / "daily", his)
        warm = _settings(root / "warm-up", his)  # imports and caches, outside the timings
        ingest_window(warm, "his", first - dt.timedelta(hours=2), first - dt.timedelta(hours=1))
        windows: list[float] = []
        visits = 0
        for h in range(24 * args.days):
            start = first + dt.timedelta(hours=h)
            t0 = time.perf_counter()
            got = ingest_window(hourly, "his", start, start + dt.timedelta(hours=1))
            windows.append(time.perf_counter() - t0)
            visits += got["extracted"]
        days: list[float] = []
        for d in range(args.days):
            start = first + dt.timedelta(days=d)
            t0 = time.perf_counter()
            ingest_window(daily, "his", start, start + dt.timedelta(days=1), purpose="daily")
            days.append(time.perf_counter() - t0)
        a = Warehouse(hourly.warehouse_dir).read_table("visits")
        b = Warehouse(daily.warehouse_dir).read_table("visits")
        cols = [c for c in a.columns if c != "batch_id"]
        same = (
            a[cols]
            .sort_values("visit_key")
            .reset_index(drop=True)
            .equals(b[cols].sort_values("visit_key").reset_index(drop=True))
        )
    hourly_per_day = sum(windows) / args.days
    daily_per_day = sum(days) / args.days
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "days": args.days,
        "visits_pulled_hourly": visits,
        "window_s_median": round(statistics.median(windows), 3),
        "window_s_p95": round(sorted(windows)[int(0.95 * len(windows)) - 1], 3),
        "hourly_s_per_day": round(hourly_per_day, 2),
        "daily_s_per_day": round(daily_per_day, 2),
        "ratio_hourly_to_daily": round(hourly_per_day / daily_per_day, 1),
        "same_visits": bool(same),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
