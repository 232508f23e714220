"""Farrington flexible: our batched implementation against R's farringtonFlexible.

Weekly case: 200 simulated weekly series × 10 years (520 weeks; seeded negative binomial
counts with yearly seasonality, a few injected outbreaks), the last 52 weeks evaluated, with
the original settings (R's defaults: b=5, w=3, delta bound) and Noufaily's (10 periods,
26 weeks left out, negative binomial bound). R runs in an Rscript subprocess on the same
counts (passed through a temporary CSV) and is timed inside R with ``system.time`` around
the ``farringtonFlexible`` call only (one run); ours is timed in this process (median of
three runs, single-threaded numpy). Reported: series-points per second, the speed ratio,
how many alarms agree and the largest relative difference of the upper bounds.

Nightly case: 10,000 daily series × 3 years, only the last day evaluated (b=2, since 3
years of daily history allow two reference years), original and Noufaily settings. Our time
includes building the full 10,000 × 1,095 result arrays. R is timed on the first 500 of
these series and its time for 10,000 extrapolated.

Run: .venv/bin/python bench/detectors_farrington.py [--out bench/results/detectors_farrington.json]
Without Rscript the R columns are skipped (reported as null) with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy

from detectors import DetectorResult, make_series
from detectors.farrington import PRESETS, detect_farrington_flexible
from detectors.series import Frequency

R_SCRIPT = r"""
suppressPackageStartupMessages(library(surveillance))
args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.csv(args[1], check.names = FALSE))
freq <- as.integer(args[3]); from <- as.integer(args[4]); to <- as.integer(args[5])
control <- switch(args[6],
  original = list(),
  noufaily = list(noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
                  pThresholdTrend = 1, thresholdMethod = "nbPlugin"))
control$b <- as.integer(args[7])
control$range <- from:to
control$glmWarnings <- FALSE
s <- sts(observed = counts, frequency = freq, start = c(2000, 1))
seconds <- system.time(r <- suppressWarnings(farringtonFlexible(s, control = control)))[["elapsed"]]
write.csv(upperbound(r), paste0(args[2], "_upper.csv"), row.names = FALSE, na = "")
write.csv(alarms(r) * 1, paste0(args[2], "_alarm.csv"), row.names = FALSE, na = "")
writeLines(format(seconds, digits = 10), paste0(args[2], "_seconds.txt"))
writeLines(c(R.version.string, as.character(packageVersion("surveillance"))),
           paste0(args[2], "_versions.txt"))
"""

SETTINGS: dict[str, dict[str, Any]] = {
    # R's defaults (weights_threshold 2.58): what farringtonFlexible runs when given nothing.
    "original": {},
    "noufaily": {k: v for k, v in PRESETS["noufaily"].items() if k != "b"},
}


def simulate(n_series: int, n_times: int, period: int, seed: int) -> np.ndarray:
    """Seeded negative binomial counts: varied levels, yearly seasonality, a few outbreaks."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times)
    level = rng.gamma(1.5, 4.0, size=(n_series, 1)) + 0.05
    amplitude = rng.uniform(0.0, 0.8, size=(n_series, 1))
    mean = level * np.exp(
        amplitude * np.cos(2 * np.pi * (t - rng.integers(0, period, (n_series, 1))) / period)
    )
    size = rng.choice([1.0, 3.0, 30.0], size=(n_series, 1))
    counts = rng.negative_binomial(size, size / (size + mean)).astype(float)
    for i in rng.choice(n_series, n_series // 5, replace=False):
        start = rng.integers(n_times - 2 * period, n_times - 3)
        counts[i, start : start + 3] += rng.poisson(3 * level[i, 0] + 3, 3)
    return counts


def run_r(
    counts: np.ndarray, freq: int, points: np.ndarray, setting: str, b: int, work: Path
) -> dict[str, Any] | None:
    """R's farringtonFlexible on ``counts`` (series × time) at ``points`` (0-based)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("Rscript not found: skipping the R side of the benchmark")
        return None
    data = work / "counts.csv"
    pd.DataFrame(counts.T, columns=[f"s{i}" for i in range(counts.shape[0])]).to_csv(
        data, index=False
    )
    script = work / "farrington_bench.R"
    script.write_text(R_SCRIPT, encoding="utf-8")
    prefix = work / f"r_{setting}"
    subprocess.run(
        [rscript, str(script), str(data), str(prefix), str(freq), str(points[0] + 1), str(points[-1] + 1), setting, str(b)],
        check=True,
    )  # fmt: skip
    return {
        "seconds": float(Path(f"{prefix}_seconds.txt").read_text().strip()),
        "upper": pd.read_csv(f"{prefix}_upper.csv").to_numpy(float).T,
        "alarm": pd.read_csv(f"{prefix}_alarm.csv").to_numpy(float).T,
        "versions": Path(f"{prefix}_versions.txt").read_text().split("\n")[:2],
    }


def run_ours(
    counts: np.ndarray, freq: Frequency, points: np.ndarray, setting: str, b: int
) -> tuple[float, DetectorResult]:
    """Our time: the median of three runs (other jobs on the machine add noise)."""
    series = make_series(counts, freq=freq)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = detect_farrington_flexible(series, at=points, b=b, **SETTINGS[setting])
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def compare(
    setting: str, counts: np.ndarray, freq: Frequency, points: np.ndarray, b: int, work: Path
) -> dict[str, Any]:
    seconds, ours = run_ours(counts, freq, points, setting, b)
    n_points = counts.shape[0] * points.size
    report: dict[str, Any] = {
        "series_points": n_points,
        "ours_seconds": round(seconds, 3),
        "ours_series_points_per_second": round(n_points / seconds),
    }
    r = run_r(counts, 52 if freq == "week" else 365, points, setting, b, work)
    if r is not None:
        upper = ours.upperbound[:, points]
        alarm = ours.alarm[:, points]
        r_has = ~np.isnan(r["alarm"])
        agree = int(np.sum((alarm == (r["alarm"] == 1)) & r_has))
        both = np.isfinite(upper) & np.isfinite(r["upper"])
        rel = np.abs(upper[both] - r["upper"][both]) / np.maximum(np.abs(r["upper"][both]), 1e-12)
        report |= {
            "r_seconds": round(r["seconds"], 2),
            "r_series_points_per_second": round(n_points / r["seconds"], 1),
            "speedup": round(r["seconds"] / seconds, 1),
            "alarms_ours": int(alarm.sum()),
            "alarms_r": int(np.nansum(r["alarm"])),
            "alarm_agreement": f"{agree}/{int(r_has.sum())}",
            "computed_mask_equal": bool(np.array_equal(ours.computed[:, points], r_has)),
            "max_rel_upperbound_error": float(f"{rel.max():.3g}") if rel.size else None,
            "r_versions": r["versions"],
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "detectors_farrington.json"
    )
    parser.add_argument("--nightly-series", type=int, default=10_000)
    parser.add_argument("--r-nightly-sample", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sentinel-bench-farrington-"))
    try:
        weekly = simulate(200, 520, 52, seed=1)
        points = np.arange(520 - 52, 520)
        report: dict[str, Any] = {
            "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "weekly": {"series": 200, "weeks": 520, "evaluated": "last 52 weeks", "b": 5},
        }
        for setting in SETTINGS:
            report["weekly"][setting] = compare(setting, weekly, "week", points, 5, work)
            print(setting, "weekly", report["weekly"][setting])
        daily = simulate(args.nightly_series, 3 * 365, 365, seed=2)
        last = np.array([daily.shape[1] - 1])
        nightly: dict[str, Any] = {
            "series": args.nightly_series,
            "days": 3 * 365,
            "evaluated": "last day",
            "b": 2,
        }
        for setting in SETTINGS:
            seconds, result = run_ours(daily, "day", last, setting, 2)
            entry: dict[str, Any] = {
                "ours_seconds": round(seconds, 2),
                "computed": int(result.computed[:, -1].sum()),
                "alarms": int(result.alarm[:, -1].sum()),
            }
            sample = daily[: args.r_nightly_sample]
            r_entry = compare(setting, sample, "day", last, 2, work)
            if "r_seconds" in r_entry:
                entry["r_seconds_sample"] = r_entry["r_seconds"]
                entry["r_sample_series"] = args.r_nightly_sample
                entry["r_seconds_extrapolated"] = round(
                    r_entry["r_seconds"] * args.nightly_series / args.r_nightly_sample,
                    1,
                )
                entry["sample_alarm_agreement"] = r_entry["alarm_agreement"]
            nightly[setting] = entry
            print(setting, "nightly", entry)
        report["nightly"] = nightly
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
