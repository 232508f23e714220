"""`sentinel demo`: the whole pipeline, as far as it exists, on embedded defaults.

Simulate the district's clinical systems under ``$SENTINEL_HOME/demo/sources``, extract
from the HIS database (SQLite), de-identify and load into the warehouse, then show what
landed and where everything is. Re-running it gives the same warehouse.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd
from rich.table import Table

from geo.areas import AreaSet
from sentinel.console import console, progress_bar, simulate_with_progress
from sentinel.logs import configure_logging, log_event
from sentinel.pipeline import load_reference
from sentinel.settings import Settings
from sentinel.simulator.run import SimulationOptions, load_area

# Used only when SENTINEL_HMAC_KEY is not set, and only by the demo: real runs refuse.
DEMO_HMAC_KEY = b"sentinel-demo-key-not-for-production"
log = logging.getLogger("sentinel.demo")


def run_demo(settings: Settings, days: int = 365, seed: int = 0) -> None:
    """Run the demo pipeline and print where its outputs are and what they contain."""
    from extract.his import extract_his_visits
    from transform.ingest import ingest_raw_visits
    from warehouse.catalog import run_query
    from warehouse.store import Warehouse

    home = settings.home
    configure_logging(settings.logs_dir)
    sources = home / "demo" / "sources"
    # The demo ingests the HIS database; the HL7 and FHIR feeds (2 GB a year) are
    # written by `sentinel simulate` when wanted.
    opts = SimulationOptions(out=sources, days=days, seed=seed, formats=("his",))
    console.rule("[bold]1 · Simulate the district's clinical systems")
    simulate_with_progress(opts)
    log_event(log, "demo_simulated", out=sources, days=days, seed=seed)

    console.rule("[bold]2 · Extract, de-identify and load into the warehouse")
    area = load_area("district", seed)
    wh = Warehouse(settings.warehouse_dir)
    load_reference(settings, area)
    key = settings.hmac_key.encode() if settings.hmac_key else DEMO_HMAC_KEY
    his = sources / "his.sqlite"
    with progress_bar() as bar:
        task = bar.add_task("Loading HIS visits", total=3, note="extract")
        raw = extract_his_visits(f"sqlite:///{his.absolute()}", source="sql")
        bar.update(task, advance=1, note=f"{len(raw):,} extracted · de-identify and write")
        result = ingest_raw_visits(
            raw,
            warehouse=wh,
            area=area,
            key=key,
            source="sql",
            location=str(his),
        )
        bar.update(task, advance=2, note=f"{result.loaded:,} loaded")
    console.print(
        f"Batch {result.batch_id[:8]}: extracted {result.extracted:,} = loaded {result.loaded:,} "
        f"+ quarantined {result.quarantined:,}; new {result.inserted:,}, replaced {result.replaced:,}, "
        f"unchanged {result.unchanged:,}; {len(result.dates)} days touched."
    )
    console.rule("[bold]3 · What the warehouse holds")
    per_street = run_query(
        settings.warehouse_dir,
        """
        SELECT s.street_code, s.name_zh, s.population, count(v.visit_key) AS visits,
               round(1000.0 * count(v.visit_key) / s.population, 1) AS per_1000_residents
        FROM streets s LEFT JOIN visits v USING (street_code)
        GROUP BY s.street_code, s.name_zh, s.population ORDER BY s.street_code
        """,
    )
    table = Table(title="Visits by residence street (de-identified)")
    for col in per_street.columns:
        table.add_column(col, justify="right" if per_street[col].dtype.kind in "iuf" else "left")
    for row in per_street.itertuples(index=False):
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    console.print(table)
    unresolved = run_query(
        settings.warehouse_dir, "SELECT count(*) AS n FROM visits WHERE street_code IS NULL"
    )
    console.print(f"Visits with unresolved residence: {int(unresolved['n'].iloc[0]):,}")
    _print_syndromes(settings)
    console.rule("[bold]4 · Detect unusual counts, every day of the year")
    loaded = wh.partition_dates("syndrome_daily")
    _detect_year(settings, sources, loaded)
    bulletin = _render_bulletin(settings, loaded)
    if bulletin is not None:
        _bulletin_outbreaks(settings, sources, max(loaded))
    _print_places(settings, sources, bulletin)
    log_event(log, "demo_finished", visits=result.loaded, warehouse=settings.warehouse_dir)


def _print_syndromes(settings: Settings) -> None:
    from warehouse.catalog import run_query

    counts = run_query(
        settings.warehouse_dir,
        """
        SELECT syndrome, CAST(sum(count) AS BIGINT) AS visits,
               round(100.0 * sum(count) / (SELECT count(*) FROM visits), 1) AS pct_of_visits,
               max(count) AS busiest_street_day
        FROM syndrome_daily GROUP BY syndrome ORDER BY visits DESC
        """,
    )
    table = Table(title="Syndromes (classified at ingest; a visit can have several)")
    for col in counts.columns:
        table.add_column(col, justify="left" if col == "syndrome" else "right")
    for row in counts.itertuples(index=False):
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    console.print(table)


def _print_outbreaks(settings: Settings, sources: Path) -> None:
    """The injected outbreaks, with what the warehouse saw in their streets and days."""
    from warehouse.catalog import run_query

    truth = pd.read_csv(sources / "ground_truth.csv", dtype={"street_codes": "str"})
    if truth.empty:
        return
    table = Table(title="Injected outbreaks (ground truth) and the warehouse's counts there")
    numbers = ("injected", "seen", "usual")
    for col in ("id", "syndrome", "streets", "days", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")
    for o in truth.itertuples(index=False):
        codes = ", ".join(f"'{c}'" for c in str(o.street_codes).split(";"))
        seen = run_query(
            settings.warehouse_dir,
            f"""
            SELECT
              sum(count) FILTER (WHERE date BETWEEN DATE '{o.start}' AND DATE '{o.end}') AS seen,
              sum(count) FILTER (WHERE date BETWEEN DATE '{o.start}' - 28 AND DATE '{o.start}' - 1) / 28.0 AS before
            FROM syndrome_daily WHERE syndrome = '{o.syndrome}' AND street_code IN ({codes})
            """,
        )
        seen_n = seen["seen"].iloc[0]
        before = seen["before"].iloc[0]
        start, end = str(o.start), str(o.end)
        days = (pd.Timestamp(end) - pd.Timestamp(start)).days + 1
        table.add_row(
            str(o.outbreak_id), str(o.syndrome), str(len(str(o.street_codes).split(";"))),
            f"{start[5:]}→{end[5:]}", str(o.extra_cases), "" if pd.isna(seen_n) else f"{int(seen_n):,}",
            "" if pd.isna(before) else f"{before * days:.0f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "seen: visits with the syndrome in the outbreak's streets and days; "
        "usual: the same streets' daily average over the 4 weeks before, times the days.",
        soft_wrap=True,
    )


def _detect_year(settings: Settings, sources: Path, dates: list[dt.date]) -> None:
    """Run temporal detection and the space-time scan over the simulated period; score both."""
    from sentinel.cluster_scan import scan_warehouse
    from sentinel.console import print_alerts, print_clusters
    from sentinel.detecting import detect_warehouse
    from sentinel.truth import score_alerts

    if len(dates) < 15:
        console.print("Too few days simulated for detection (EARS needs 10 days of history).")
        return
    first, last = min(dates) + dt.timedelta(days=14), max(dates)
    with progress_bar() as bar:
        task = bar.add_task("Detecting", total=2, note=f"temporal, {first} … {last}")
        summary = detect_warehouse(settings, first, last)
        bar.update(task, advance=1, note=f"space-time scan, {first} … {last}")
        # 199 replications instead of 999 keep the demo's 3,000 scans quick; they still
        # resolve recurrence intervals up to 200 days, above the 100-day alert threshold.
        demo_scan = replace(
            settings, scan=replace(settings.scan, reps=min(settings.scan.reps, 199))
        )
        scanned = scan_warehouse(demo_scan, first, last)
        bar.update(task, advance=1)
    print_alerts(summary, limit=12)
    print_clusters(scanned, limit=12)
    truth = pd.read_csv(sources / "ground_truth.csv", dtype={"street_codes": "str"})
    cells = _cells_per_day(settings) * len(summary.days)
    score = score_alerts(summary.alerts, truth, cells)
    scan_score = score_alerts(_alert_columns(scanned.alerts), truth, cells)
    table = Table(title="Injected outbreaks: flagged?")
    for col in ("id", "syndrome", "days", "injected", "temporal", "scan"):
        table.add_column(col, justify="right" if col == "injected" else "left")
    by_scan = scan_score.outbreaks.set_index("outbreak_id")
    for o in score.outbreaks.to_dict("records"):
        s = by_scan.loc[o["outbreak_id"]]
        table.add_row(
            str(o["outbreak_id"]), str(o["syndrome"]), f"{str(o['start'])[5:]}→{str(o['end'])[5:]}",
            str(o["extra_cases"]), _flag(o["flagged"], o["days_to_alert"]),
            _flag(bool(s["flagged"]), s["days_to_alert"]),
        )  # fmt: skip
    console.print(table)
    either = int(
        (
            score.outbreaks["flagged"].to_numpy()
            | by_scan.loc[score.outbreaks["outbreak_id"], "flagged"].to_numpy()
        ).sum()
    )
    delays = score.outbreaks["days_to_alert"].dropna()
    console.print(
        f"Temporal detectors flagged [bold]{score.detected} of {len(score.outbreaks)}[/] injected "
        "outbreaks"
        + (f", median {delays.median():.0f} day(s) after onset" if len(delays) else "")
        + f"; {score.true_alerts:,} alerts matched an outbreak, {score.false_alerts:,} did not: "
        f"{score.false_per_100:.2f} false alarms per 100 street-syndrome-days (target ≤ 1; "
        "the simulated seasons' own rises count as false here). "
        f"The space-time scan flagged {scan_score.detected} ({scan_score.true_alerts} cluster "
        f"alerts matched, {scan_score.false_alerts} did not); either: {either} of "
        f"{len(score.outbreaks)}.",
        soft_wrap=True,
    )
    _map_top_cluster(settings, scanned.alerts)
    log_event(
        log, "demo_detected", flagged=score.detected, outbreaks=len(score.outbreaks),
        alerts=len(summary.alerts), false_alerts=score.false_alerts,
        scan_flagged=scan_score.detected, scan_alerts=len(scanned.alerts), either=either,
    )  # fmt: skip


def _map_top_cluster(settings: Settings, alerts: pd.DataFrame) -> None:
    """Map the scan's strongest new cluster of the year (PNG and SVG, offline)."""
    from geo.areas import load_area_set
    from geo.maps import render_cluster_map

    if alerts.empty:
        return
    top = alerts.sort_values(["llr", "date"], ascending=[False, True]).iloc[0]
    area = load_area_set(settings.area_set, home=settings.home)
    first, last = pd.Timestamp(top["window_start"]).date(), pd.Timestamp(top["date"]).date()
    syndrome = str(top["syndrome"])
    rates = _rates_per_10k(settings, syndrome, first, last, area)
    paths = render_cluster_map(
        area,
        highlight=list(top["street_codes"]),
        values=rates,
        values_label=f"{syndrome} visits per 10,000 residents, {first} … {last}",
        title=f"{syndrome} cluster {first} → {last}: "
        f"{top['observed']:.0f} observed, {top['expected']:.1f} expected",
        path=settings.home / "demo" / "maps" / "top_cluster",
    )
    console.print(f"Map of the strongest cluster: {', '.join(str(p) for p in paths)}")


def _rates_per_10k(
    settings: Settings, syndrome: str, first: dt.date, last: dt.date, area: AreaSet
) -> dict[str, float]:
    from warehouse.catalog import run_query

    counts = run_query(
        settings.warehouse_dir,
        f"SELECT street_code, sum(count) AS n FROM syndrome_daily WHERE syndrome = '{syndrome}' "
        f"AND date BETWEEN DATE '{first}' AND DATE '{last}' GROUP BY street_code",
    )
    population = area.streets.set_index(area.streets["street_code"].astype(str))["population"]
    counted = counts.set_index(counts["street_code"].astype(str))["n"].astype(float)
    rates = 1e4 * counted.reindex(population.index, fill_value=0.0) / population.astype(float)
    return {str(k): float(v) for k, v in rates.items()}


def _alert_columns(alerts: pd.DataFrame) -> pd.DataFrame:
    if alerts.empty:
        return pd.DataFrame(columns=["date", "syndrome", "street_codes", "age_group"])
    return alerts


def _flag(flagged: bool, delay: object) -> str:
    if not flagged:
        return "[red]no[/]"
    return f"yes, day {float(delay):.0f}"  # type: ignore[arg-type]


def _cells_per_day(settings: Settings) -> int:
    from warehouse.catalog import run_query

    n = run_query(
        settings.warehouse_dir,
        "SELECT count(DISTINCT street_code) * count(DISTINCT syndrome) AS n FROM syndrome_daily",
    )
    return int(n["n"].iloc[0])


def _render_bulletin(settings: Settings, dates: list[dt.date]) -> Path | None:
    """The CDC's bulletin for the last simulated day (HTML and PDF)."""
    from reports.bulletin import render_bulletin

    if len(dates) < 15:
        return None
    console.rule("[bold]5 · The CDC's daily bulletin")
    with progress_bar() as bar:
        task = bar.add_task("Rendering the bulletin", total=1, note=str(max(dates)))
        paths = render_bulletin(settings, max(dates))
        bar.update(task, advance=1)
    console.print(f"Bulletin for {max(dates)}: {paths.html} (and PDF: {paths.pdf})")
    return paths.html


def _bulletin_outbreaks(settings: Settings, sources: Path, day: dt.date) -> None:
    """Say which injected outbreaks under way on ``day`` the day's bulletin alerts show."""
    from sentinel.truth import score_alerts
    from warehouse.store import Warehouse

    truth = pd.read_csv(sources / "ground_truth.csv", dtype={"street_codes": str})
    running = truth[(pd.to_datetime(truth["start"]).dt.date <= day)]
    running = running[pd.to_datetime(running["end"]).dt.date >= day]
    alerts = Warehouse(settings.warehouse_dir).read_dates("alerts", day, day).to_pandas()
    if running.empty:
        console.print(f"No injected outbreak was under way on {day}.")
        return
    score = score_alerts(alerts, running, cells=1, grace_days=0)
    for o in score.outbreaks.itertuples(index=False):
        shown = "in the bulletin" if o.alerts else "[red]not in the bulletin[/]"
        console.print(
            f"Injected outbreak {o.outbreak_id} ({o.syndrome}, under way on {day}): {shown} "
            f"({o.alerts} of its {len(alerts)} alerts)."
        )
    log_event(log, "demo_bulletin_outbreaks", day=day, running=len(running), shown=score.detected)


def _print_places(settings: Settings, sources: Path, bulletin: Path | None = None) -> None:
    console.rule("[bold]Where things are")
    rows = [
        ("Simulated HIS database (SQLite)", sources / "his.sqlite"),
        ("Injected outbreaks (ground truth)", sources / "ground_truth.csv"),
        ("Warehouse (Parquet, hive partitions)", settings.warehouse_dir),
        ("DuckDB catalog", settings.warehouse_dir / "sentinel.duckdb"),
        ("Logs", settings.logs_dir / "sentinel.log"),
        *([("Daily bulletin (HTML, PDF)", bulletin.parent)] if bulletin else []),
    ]
    for label, path in rows:
        console.print(f"  {label}: {path}")
    console.print(
        "\nThe same district's HL7 v2 and FHIR R4 feeds: sentinel simulate --out DIR",
        soft_wrap=True,
    )
    console.print(
        'Try: [bold]sentinel sql "SELECT age_group, count(*) FROM visits GROUP BY ALL ORDER BY 1"[/]',
        soft_wrap=True,
    )
    console.print("     [bold]sentinel sql[/]  (read-only DuckDB shell on the warehouse)")
