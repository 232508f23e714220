"""City-scale nightly detection: 215 streets × 9 syndromes (× 5 age groups), 3 years of days.

Builds a warehouse holding only daily counts (``syndrome_daily`` and ``syndrome_age_daily``
partitions with negative-binomial counts, seasonal and weekly), then times
``sentinel detect --date D`` (warehouse mode: read history, run the configured methods on
every series for the analysis day, write alerts) for several ``[detect]`` configurations.
Reported: seconds per nightly run, series, series per second, and the time spent reading.

Run: .venv/bin/python bench/detect_nightly.py [--streets 215] [--years 3]
     [--out bench/results/detect_nightly.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa

from detectors.registry import get_method
from sentinel.detect_settings import DetectorChoice, DetectSettings
from sentinel.detecting import detect_warehouse
from sentinel.settings import Settings
from sentinel.timeseries import load_series
from warehouse.files import partition_path, write_parquet_atomic
from warehouse.schema import file_schema
from warehouse.store import Warehouse

SYNDROMES = ["conjunctivitis", "fever", "gastrointestinal", "hfmd", "ili", "jaundice",
             "neurological", "rash", "respiratory"]  # fmt: skip
AGE_GROUPS = ["0-4", "5-14", "15-24", "25-59", "60+"]
AGE_SHARE = np.array([0.08, 0.12, 0.12, 0.45, 0.23])
MEANS = np.array([0.4, 8.0, 5.0, 0.4, 4.0, 0.05, 0.1, 1.0, 16.0])


def build_warehouse(root: Path, streets: int, days: int, seed: int) -> dt.date:
    """Write ``days`` daily partitions of both count tables; return the last day."""
    rng = np.random.default_rng(seed)
    codes = [f"3100{i:04d}0000" for i in range(streets)]
    first = dt.date(2023, 1, 1)
    street_scale = rng.gamma(4.0, 0.25, streets)
    t = np.arange(days)
    season = 1 + 0.4 * np.cos(2 * np.pi * (t - 15) / 365.25)
    weekday = np.array([1.15, 1.05, 1.0, 1.0, 1.0, 0.85, 0.8])[(t + first.weekday()) % 7]
    mean = (
        street_scale[:, None, None] * MEANS[None, :, None] * (season * weekday)[None, None, :]
    )  # street × syndrome × day
    size = 5.0
    daily = rng.negative_binomial(size, size / (size + mean))
    by_age = np.stack([rng.binomial(daily, p) for p in AGE_SHARE / AGE_SHARE.sum()], axis=2)
    wh = Warehouse(root)
    street_col = np.repeat(codes, len(SYNDROMES))
    syndrome_col = np.tile(SYNDROMES, streets)
    for i in range(days):
        day = first + dt.timedelta(days=i)
        counts = daily[:, :, i].reshape(-1)
        part = pa.table(
            {"street_code": street_col, "syndrome": syndrome_col, "count": counts,
             "visits": np.repeat(daily[:, :, i].sum(axis=1) * 3, len(SYNDROMES))}
        )  # fmt: skip
        write_parquet_atomic(
            part.cast(file_schema("syndrome_daily")), partition_path(root, "syndrome_daily", day)
        )
        aged = by_age[:, :, :, i]  # street × age... (street, syndrome, age)
        s_idx, y_idx, a_idx = np.nonzero(aged)
        rows = pa.table(
            {
                "street_code": np.asarray(codes)[s_idx],
                "age_group": np.asarray(AGE_GROUPS)[a_idx],
                "syndrome": np.asarray(SYNDROMES)[y_idx],
                "count": aged[s_idx, y_idx, a_idx].astype(np.int64),
            }
        ).sort_by(
            [("street_code", "ascending"), ("age_group", "ascending"), ("syndrome", "ascending")]
        )
        write_parquet_atomic(
            rows.cast(file_schema("syndrome_age_daily")),
            partition_path(root, "syndrome_age_daily", day),
        )
    wh.refresh_catalog()
    return first + dt.timedelta(days=days - 1)


# Every age-group series runs (age_group_min_daily=0): the full 215 × 9 × 6 grid.
EVERY = DetectSettings(age_group_min_daily=0.0)
CONFIGS: dict[str, DetectSettings] = {
    "defaults": EVERY,
    "farrington_flexible (b=2)": replace(
        EVERY, method=DetectorChoice("farrington_flexible", MappingProxyType({"b": 2}))
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streets", type=int, default=215)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", action="append", help="Extra method to time (defaults).")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "detect_nightly.json"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sentinel-bench-detect-"))
    configs = dict(CONFIGS)
    for name in args.method or []:
        get_method(name)
        configs[f"{name} (defaults)"] = replace(EVERY, method=DetectorChoice(name))
    try:
        t0 = time.perf_counter()
        days = args.years * 365 + 31  # mpm (3 years) needs 3 years + 20 days
        last = build_warehouse(work / "warehouse", args.streets, days, args.seed)
        built = time.perf_counter() - t0
        settings = Settings(home=work)
        wh = Warehouse(settings.warehouse_dir)
        t0 = time.perf_counter()
        table = load_series(wh, last - dt.timedelta(days=days), last, age_groups=True)
        read = time.perf_counter() - t0
        print(f"warehouse: {days} days built in {built:.1f} s; read {table.n_series:,} series "
              f"× {table.n_days} days in {read:.2f} s")  # fmt: skip
        runs = []
        for label, detect in configs.items():
            run_settings = replace(settings, detect=detect)
            t0 = time.perf_counter()
            summary = detect_warehouse(run_settings, last)
            seconds = time.perf_counter() - t0
            runs.append(
                {
                    "config": label,
                    "seconds": round(seconds, 2),
                    "series": summary.series,
                    "series_per_second": round(summary.series / seconds),
                    "alerts": len(summary.alerts),
                    "methods": summary.methods,
                }
            )
            print(f"{label}: {seconds:.1f} s for {summary.series:,} series "
                  f"({len(summary.alerts)} alerts; {summary.methods})")  # fmt: skip
        result = {
            "benchmark": "detect_nightly",
            "when": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "streets": args.streets,
            "syndromes": len(SYNDROMES),
            "age_groups": len(AGE_GROUPS),
            "history_days": days,
            "series": table.n_series,
            "read_seconds": round(read, 2),
            "runs": runs,
            "target_seconds": 60,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"written {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()
