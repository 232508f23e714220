"""EARS C1/C2/C3 and CUSUM throughput against R ``surveillance`` on the same series.

Simulates ``--series`` negative binomial daily series of ``--days`` days (yearly season,
weekly pattern), runs R's ``earsC`` (C1, C2, C3, defaults) and ``cusum`` (defaults, the
last ``days - 365`` days monitored) on them in one ``Rscript`` process, timed with
``system.time`` around the calls only (the series reach R through a temporary CSV), and our
detectors in this process (best of ``--repeats``, in steady state and with every call on
fresh memory, see :func:`time_ours`). Reports series-days per second for each, the ratios,
and whether the alarms are identical; then the nightly case: ``--nightly`` series, the
last day only. Writes ``bench/results/detectors_ears.json``. Timings vary with the load
of the machine (R's by up to 2x): run it on an otherwise idle machine.

Run: .venv/bin/python bench/detectors_ears.py [--series 500] [--days 1095] [--no-r]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
from rich.console import Console
from rich.table import Table

from detectors.cusum import detect_cusum
from detectors.ears import detect_ears_c1, detect_ears_c2, detect_ears_c3
from detectors.result import DetectorResult
from detectors.series import CountSeries, make_series

CUSUM_START = 365
OURS: dict[str, Callable[[CountSeries], DetectorResult]] = {
    "C1": detect_ears_c1,
    "C2": detect_ears_c2,
    "C3": detect_ears_c3,
    "cusum": lambda s: detect_cusum(s, start=CUSUM_START),
}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(surveillance))
args <- commandArgs(trailingOnly = TRUE)
y <- as.matrix(read.csv(args[1], check.names = FALSE))
s <- sts(observed = y, start = c(2019, 1), frequency = 365)
n <- nrow(y)
seconds <- c()
for (m in c("C1", "C2", "C3")) {
  seconds[m] <- system.time(res <- earsC(s, control = list(method = m)))[["elapsed"]]
  alarm <- matrix(NA, n, ncol(y))
  alarm[res@control$range, ] <- alarms(res)
  write.csv(alarm + 0, file.path(args[2], paste0(m, ".csv")), row.names = FALSE)
}
rng <- (%(start)d + 1):n
seconds["cusum"] <- system.time(
  res <- cusum(s, control = list(range = rng), verbose = FALSE))[["elapsed"]]
alarm <- matrix(NA, n, ncol(y))
alarm[rng, ] <- alarms(res)
write.csv(alarm + 0, file.path(args[2], "cusum.csv"), row.names = FALSE)
write.csv(data.frame(method = names(seconds), seconds = seconds),
          file.path(args[2], "seconds.csv"), row.names = FALSE)
writeLines(c(R.version.string, as.character(packageVersion("surveillance"))),
           file.path(args[2], "versions.txt"))
"""


def simulate_counts(n_series: int, n_days: int, seed: int) -> np.ndarray:
    """Negative binomial counts with a yearly season and a weekly pattern, means 0.5-50."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_days)
    level = np.exp(rng.uniform(np.log(0.5), np.log(50), size=(n_series, 1)))
    season = np.exp(
        rng.uniform(0, 0.5, (n_series, 1))
        * np.cos(2 * np.pi * (t - rng.integers(0, 365, (n_series, 1))) / 365.25)
    )
    weekly = np.array([1.15, 1.1, 1.0, 1.0, 0.95, 0.7, 0.6])[t % 7]
    mean = level * season * weekly
    size = rng.uniform(2, 20, (n_series, 1))
    return rng.negative_binomial(size, size / (size + mean)).astype(np.float64)


def time_ours(series: CountSeries, repeats: int) -> dict[str, tuple[float, float, DetectorResult]]:
    """Best seconds per method: steady state, and with every call on fresh memory.

    Steady state is a plain loop (the previous result is alive while the next is computed,
    so the allocator reuses its pages). "Fresh" drops each result before the next call, so
    glibc hands the freed pages back to the kernel and the next call faults them in again:
    a result of 500 x 1095 float arrays makes that about half of the run time.
    """
    out = {}
    for name, detect in OURS.items():
        steady, result = np.inf, detect(series)
        for _ in range(repeats):
            start = time.perf_counter()
            result = detect(series)
            steady = min(steady, time.perf_counter() - start)
        fresh = np.inf
        for _ in range(repeats):
            del result
            gc.collect()
            start = time.perf_counter()
            result = detect(series)
            fresh = min(fresh, time.perf_counter() - start)
        out[name] = (steady, fresh, result)
    return out


def run_r(
    counts: np.ndarray, work: Path
) -> tuple[dict[str, float], dict[str, np.ndarray], list[str]]:
    """R's elapsed seconds per method, its alarms (NaN = NA) and versions."""
    pd.DataFrame(counts.T, columns=[f"s{i}" for i in range(counts.shape[0])]).to_csv(
        work / "counts.csv", index=False
    )
    script = work / "bench.R"
    script.write_text(R_SCRIPT % {"start": CUSUM_START}, encoding="utf-8")
    subprocess.run(["Rscript", str(script), str(work / "counts.csv"), str(work)], check=True)
    frame = pd.read_csv(work / "seconds.csv")
    seconds = {str(m): float(v) for m, v in zip(frame["method"], frame["seconds"], strict=True)}
    alarms = {m: pd.read_csv(work / f"{m}.csv").to_numpy(float).T for m in OURS}
    versions = (work / "versions.txt").read_text(encoding="utf-8").splitlines()
    return seconds, alarms, versions


def time_nightly(n_series: int, n_days: int, seed: int, repeats: int) -> dict[str, float]:
    """Seconds to evaluate the last day of ``n_series`` series (the nightly run)."""
    series = make_series(simulate_counts(n_series, n_days, seed + 1))
    out = {}
    for name, detect in {
        "C1": detect_ears_c1,
        "C2": detect_ears_c2,
        "C3": detect_ears_c3,
        "cusum": lambda s, at: detect_cusum(s, at=at, start=CUSUM_START),
    }.items():
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            detect(series, at=[n_days - 1])
            best = min(best, time.perf_counter() - start)
        out[name] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--nightly", type=int, default=10_000, help="series in the nightly case")
    parser.add_argument("--no-r", action="store_true", help="time ours only")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "detectors_ears.json"
    )
    args = parser.parse_args()
    console = Console(width=140)
    counts = simulate_counts(args.series, args.days, args.seed)
    series = make_series(counts)
    series_days = args.series * args.days
    ours = time_ours(series, args.repeats)

    r_seconds: dict[str, float] = {}
    r_alarms: dict[str, np.ndarray] = {}
    r_versions: list[str] = []
    if args.no_r:
        console.print("[yellow]--no-r: R not run[/yellow]")
    elif shutil.which("Rscript") is None:
        console.print(
            "[yellow]Rscript not found: R's timings and the alarm check are skipped[/yellow]"
        )
    else:
        work = Path(tempfile.mkdtemp(prefix="sentinel-bench-ears-"))
        try:
            r_seconds, r_alarms, r_versions = run_r(counts, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    methods = {}
    table = Table(title=f"{args.series} series x {args.days} days ({series_days:,} series-days)")
    columns = ("method", "ours s", "ours fresh s", "ours series-days/s", "R s", "R series-days/s")
    for column in (*columns, "ratio", "ratio fresh", "alarms identical"):
        table.add_column(column, justify="right")
    for name, (seconds, fresh, result) in ours.items():
        entry: dict[str, object] = {
            "ours_seconds": round(seconds, 5),
            "ours_seconds_fresh_memory": round(fresh, 5),
            "ours_series_days_per_second": round(series_days / seconds),
            "alarms": int(result.alarm.sum()),
        }
        row = [name, f"{seconds:.4f}", f"{fresh:.4f}", f"{series_days / seconds:,.0f}"]
        row += ["-"] * 5
        if name in r_seconds:
            r_alarm = r_alarms[name]
            has = ~np.isnan(r_alarm)
            identical = bool(
                np.array_equal(result.alarm[has], r_alarm[has] == 1)
                and not result.alarm[~has].any()
            )
            mismatches = int((result.alarm[has] != (r_alarm[has] == 1)).sum())
            entry |= {
                "r_seconds": r_seconds[name],
                "r_series_days_per_second": round(series_days / r_seconds[name]),
                "speedup": round(r_seconds[name] / seconds),
                "speedup_fresh_memory": round(r_seconds[name] / fresh),
                "alarms_identical": identical,
                "alarm_mismatches": mismatches,
                "r_alarms": int(np.nansum(r_alarm)),
            }
            row[4:] = [
                f"{r_seconds[name]:.2f}",
                f"{series_days / r_seconds[name]:,.0f}",
                f"{r_seconds[name] / seconds:,.0f}x",
                f"{r_seconds[name] / fresh:,.0f}x",
                str(identical),
            ]
        methods[name] = entry
        table.add_row(*row)
    console.print(table)

    nightly = time_nightly(args.nightly, args.days, args.seed, args.repeats)
    console.print(
        f"nightly, {args.nightly:,} series x {args.days} days, last day only: "
        + ", ".join(f"{k} {v:.3f} s" for k, v in nightly.items())
    )
    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "r": r_versions[0] if r_versions else None,
            "surveillance": r_versions[1] if r_versions else None,
        },
        "series": args.series,
        "days": args.days,
        "series_days": series_days,
        "seed": args.seed,
        "timing": (
            "ours: best of --repeats in this process, steady state (previous result alive) "
            "and fresh memory (previous result freed first); R: system.time elapsed around "
            "the call, one run"
        ),
        "cusum_start": CUSUM_START,
        "methods": methods,
        "nightly_last_day": {
            "series": args.nightly,
            "days": args.days,
            "seconds": {k: round(v, 4) for k, v in nightly.items()},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
