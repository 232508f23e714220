"""The `sentinel` command: one entry point for every stage (see DESIGN.md, the contract).

Every subcommand has ``--help``, exits 0 on success and 2 with one line on stderr naming
the problem on bad usage or bad input.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer

# typer >= 0.20 vendors click; its exceptions live here (pinned by constraints.txt).
from typer._click import exceptions as click_exc

from sentinel.errors import SentinelError, UsageError
from sentinel.settings import Settings, load_settings

app = typer.Typer(
    name="sentinel",
    help="Sentinel: syndromic surveillance for a district health bureau and its CDC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="Folder holding all state (default: $SENTINEL_HOME or ./.sentinel)."
    ),
]


class State:
    """Settings shared by the subcommands of one invocation."""

    settings: Settings


state = State()


@app.callback()
def _root(home: HomeOption = None) -> None:
    """Sentinel: syndromic surveillance for a district health bureau and its CDC."""
    state.settings = load_settings(home)


def parse_date(value: str, option: str) -> date:
    """A YYYY-MM-DD date, or a usage error naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a valid date (YYYY-MM-DD)") from None


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder for the simulated source systems.")],
    days: Annotated[int, typer.Option("--days", help="Number of days to simulate.")] = 365,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")] = "2025-01-01",
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: same seed, identical files.")
    ] = 0,
    his_url: Annotated[
        str | None,
        typer.Option(
            "--his-url", help="SQLAlchemy URL of the HIS database (default: OUT/his.sqlite)."
        ),
    ] = None,
    scale: Annotated[
        str,
        typer.Option(
            "--scale", help="district (Changning, ~2k visits/day) or city (215 streets, ~300k/day)."
        ),
    ] = "district",
    formats: Annotated[
        str,
        typer.Option(
            "--formats", help="Source systems to write: comma-separated subset of his,hl7,fhir."
        ),
    ] = "his,hl7,fhir",
) -> None:
    """Simulate a district's clinical systems (HIS database, HL7 v2 feed, FHIR export) and ground truth."""
    from sentinel.console import simulate_with_progress
    from sentinel.simulator.run import FORMATS, SimulationOptions

    if scale not in ("district", "city"):
        raise UsageError(f"--scale must be district or city, got {scale!r}")
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not chosen or any(f not in FORMATS for f in chosen):
        raise UsageError(
            f"--formats takes a comma-separated subset of his,hl7,fhir, got {formats!r}"
        )
    opts = SimulationOptions(
        out=out,
        days=days,
        start=parse_date(start, "--start"),
        seed=seed,
        scale=scale,  # type: ignore[arg-type]
        his_url=his_url,
        formats=chosen,  # type: ignore[arg-type]
    )
    simulate_with_progress(opts)


@app.command()
def demo(
    days: Annotated[int, typer.Option("--days", help="Days to simulate.")] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the simulated district.")] = 0,
    airflow: Annotated[
        bool,
        typer.Option(
            "--airflow",
            help="Run the real Airflow DAGs with dag.test() instead (default --days 60 then).",
        ),
    ] = False,
    detect_days: Annotated[
        int, typer.Option("--detect-days", help="--airflow: nightly detection runs at the end.")
    ] = 3,
) -> None:
    """Simulate a district and run the pipeline end to end on embedded defaults; print where outputs are."""
    if airflow:
        from sentinel.airflow_demo import run_airflow_demo

        run_airflow_demo(
            state.settings, days=60 if days == 365 else days, seed=seed, detect_days=detect_days
        )
        return
    from sentinel.demo import run_demo

    run_demo(state.settings, days=days, seed=seed)


@app.command()
def ingest(
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="KIND:LOCATION with KIND sql (SQLAlchemy URL), hl7, fhir or linelist."
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="sql: ignore the watermark and pull everything.")
    ] = False,
    lookback_hours: Annotated[
        float,
        typer.Option(
            "--lookback-hours", help="sql: re-read this much before the watermark (late commits)."
        ),
    ] = 2.0,
) -> None:
    """Extract visits from a clinical source, de-identify them at the edge and load the warehouse."""
    from sentinel.ingesting import ingest_source

    if source is None:
        raise UsageError("--source KIND:LOCATION is required")
    ingest_source(state.settings, source, full=full, lookback_hours=lookback_hours)


@app.command()
def classify(
    input_file: Annotated[
        Path,
        typer.Option(
            "--input", help="CSV with chief_complaint, temperature_c, age_years, diagnosis_codes."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", help="CSV written with a `syndromes` column added.")
    ],
    definitions: Annotated[
        Path | None,
        typer.Option(
            "--definitions", help="Syndrome definitions YAML (default: the shipped version)."
        ),
    ] = None,
) -> None:
    """Classify visits into syndromes (Chinese and English complaints, temperature, ICD-10 codes)."""
    from transform.syndromes import classify_file, load_definitions

    if not input_file.is_file():
        raise UsageError(f"--input {input_file} does not exist")
    try:
        defs = load_definitions(definitions) if definitions else None
        rows = classify_file(input_file, output, defs)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    print(f"classified {rows:,} visits → {output}", file=sys.stderr)


@app.command()
def detect(
    method: Annotated[
        str | None, typer.Option("--method", help="Method for one series (see --list-methods).")
    ] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="CSV with date,count (daily or weekly).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="CSV written with date,count,expected,upperbound,alarm."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Method parameter key=value (repeatable)."),
    ] = None,
    fill_missing: Annotated[
        str,
        typer.Option("--fill-missing", help="Missing days: error (default) or zero."),
    ] = "error",
    details: Annotated[
        bool, typer.Option("--details", help="Also write score and p_value columns.")
    ] = False,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Warehouse mode: analysis day YYYY-MM-DD (default: today minus the reporting lag).",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Warehouse mode: analyse every day from --date to this day."),
    ] = None,
    list_methods: Annotated[
        bool, typer.Option("--list-methods", help="List the methods and their parameters.")
    ] = False,
) -> None:
    """Detect unusual counts: one series from a CSV file, or every warehouse series for a day."""
    from sentinel import detecting

    if list_methods:
        _print_methods()
        return
    if fill_missing not in ("error", "zero"):
        raise UsageError(f"--fill-missing must be error or zero, got {fill_missing!r}")
    fill: detecting.FillMissing = "zero" if fill_missing == "zero" else "error"
    file_mode = [
        o for o, v in (("--method", method), ("--input", input_file), ("--output", output)) if v
    ]
    if file_mode:
        if day or to:
            raise UsageError(
                "give either --method/--input/--output (one series) or --date (warehouse)"
            )
        lacking = [o for o in ("--method", "--input", "--output") if o not in file_mode]
        if lacking:
            raise UsageError(f"one-series mode needs {', '.join(lacking)}")
        assert method and input_file and output
        result = detecting.detect_file(
            method,
            input_file,
            output,
            param or (),
            fill_missing=fill,
            details=details,
        )
        print(
            f"{method}: {int(result.computed.sum())} of {result.computed.size} points computed, "
            f"{int(result.alarm.sum())} alarm(s) → {output}",
            file=sys.stderr,
        )
        return
    if param:
        raise UsageError("--param applies to one-series mode; set warehouse methods in [detect]")
    settings = state.settings
    if day is None:
        first = date.today() - timedelta(days=settings.detect.reporting_lag_days)
    else:
        first = parse_date(day, "--date")
    last = parse_date(to, "--to") if to else first
    summary = detecting.detect_warehouse(settings, first, last)
    from sentinel.console import print_alerts

    print_alerts(summary)


def _print_methods() -> None:
    from detectors.registry import get_method, method_names

    for name in method_names():
        m = get_method(name)
        params = ", ".join(f"{k}={v!r}" for k, v in m.defaults.items())
        print(f"{name}{'  [sparse]' if m.sparse else ''}: {m.summary}\n    {params}")


@app.command()
def scan(
    cases: Annotated[
        Path | None, typer.Option("--cases", help="CSV location_id,date,count (file mode).")
    ] = None,
    geo: Annotated[
        Path | None,
        typer.Option(
            "--geo", help="CSV location_id,x,y (km) or location_id,lat,lon [+ population]."
        ),
    ] = None,
    end_date: Annotated[
        str | None, typer.Option("--end-date", help="Analysis day: windows end on it.")
    ] = None,
    start_date: Annotated[
        str | None,
        typer.Option("--start-date", help="First day of the study period (default: first case)."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="permutation (space-time) or poisson (population).")
    ] = "permutation",
    max_days: Annotated[int, typer.Option("--max-days", help="Longest window in days.")] = 7,
    max_radius_km: Annotated[
        float | None, typer.Option("--max-radius-km", help="Largest circle radius in km.")
    ] = None,
    max_size_pct: Annotated[
        float,
        typer.Option(
            "--max-size-pct",
            help="Largest circle, % of all cases (permutation) or of the population (poisson).",
        ),
    ] = 50.0,
    reps: Annotated[int, typer.Option("--reps", help="Monte Carlo replications.")] = 999,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the replications.")] = 0,
    output: Annotated[
        Path | None, typer.Option("--output", help="CSV of clusters (file mode).")
    ] = None,
    day: Annotated[
        str | None,
        typer.Option("--date", help="Warehouse mode: scan every syndrome for this day."),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Warehouse mode: every day from --date to this.")
    ] = None,
) -> None:
    """Find space-time clusters (SaTScan's prospective scan): from CSV files, or the warehouse."""
    if model not in ("permutation", "poisson"):
        raise UsageError(f"--model must be permutation or poisson, got {model!r}")
    file_mode = [o for o, v in (("--cases", cases), ("--geo", geo), ("--output", output)) if v]
    if file_mode or end_date:
        if day or to:
            raise UsageError("give either --cases/--geo/--output (files) or --date (warehouse)")
        lacking = [o for o in ("--cases", "--geo", "--output") if o not in file_mode]
        if lacking or not end_date:
            raise UsageError(
                f"file mode needs {', '.join([*lacking, *([] if end_date else ['--end-date'])])}"
            )
        from sentinel.scanning import scan_files

        assert cases and geo and output
        clusters = scan_files(
            cases,
            geo,
            output,
            end_date=parse_date(end_date, "--end-date"),
            start_date=parse_date(start_date, "--start-date") if start_date else None,
            model=model,
            max_days=max_days,
            max_radius_km=max_radius_km,
            max_size_pct=max_size_pct,
            reps=reps,
            seed=seed,
        )
        print(f"{len(clusters)} cluster(s) → {output}", file=sys.stderr)
        return
    from sentinel.cluster_scan import scan_warehouse
    from sentinel.console import print_clusters

    settings = state.settings
    first = (
        parse_date(day, "--date")
        if day
        else date.today() - timedelta(days=settings.detect.reporting_lag_days)
    )
    last = parse_date(to, "--to") if to else first
    print_clusters(scan_warehouse(settings, first, last))


@app.command()
def report(
    day: Annotated[
        str | None,
        typer.Option(
            "--date", help="Day of the bulletin (default: today minus the reporting lag)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: $SENTINEL_HOME/reports/DAY).")
    ] = None,
    email: Annotated[
        bool, typer.Option("--email", help="E-mail it (PDF attached) to the [notify] recipients.")
    ] = False,
    webhook: Annotated[
        bool, typer.Option("--webhook", help="Post the top alerts to the [notify] webhook.")
    ] = False,
) -> None:
    """Render the daily alert bulletin (HTML and PDF, Chinese with English) for CDC staff."""
    from reports.bulletin import render_bulletin

    settings = state.settings
    when = (
        parse_date(day, "--date")
        if day
        else date.today() - timedelta(days=settings.detect.reporting_lag_days)
    )
    paths = render_bulletin(settings, when, out)
    print(f"bulletin for {when}: {paths.html} and {paths.pdf}", file=sys.stderr)
    if email or webhook:
        from sentinel.reporting import deliver_bulletin

        for line in deliver_bulletin(settings, when, paths.pdf, email=email, webhook=webhook):
            print(line, file=sys.stderr)


@app.command()
def stats(
    period: Annotated[str, typer.Option("--period", help="week or month.")] = "week",
    end: Annotated[
        str | None, typer.Option("--end", help="Last day of the period (default: yesterday).")
    ] = None,
    audience: Annotated[
        str,
        typer.Option(
            "--audience", help="public (counts below 5 suppressed) or internal (exact counts)."
        ),
    ] = "public",
    out: Annotated[Path | None, typer.Option("--out", help="Output folder.")] = None,
) -> None:
    """Leaders' statistics: HTML/PDF brief and Excel/CSV tables for a week or month."""
    from reports.stats import render_stats

    if period not in ("week", "month"):
        raise UsageError(f"--period must be week or month, got {period!r}")
    if audience not in ("public", "internal"):
        raise UsageError(f"--audience must be public or internal, got {audience!r}")
    last = parse_date(end, "--end") if end else date.today() - timedelta(days=1)
    paths = render_stats(
        state.settings,
        period=period,  # type: ignore[arg-type]
        end=last,
        audience=audience,  # type: ignore[arg-type]
        out_dir=out,
    )
    print(f"{period} statistics to {last} ({audience}): {paths.html}", file=sys.stderr)


alerts_app = typer.Typer(help="Review alerts: list, show, update (new → investigating → closed).")
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list(
    since: Annotated[str | None, typer.Option("--since", help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day, YYYY-MM-DD.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="new, investigating or closed.")
    ] = None,
    syndrome: Annotated[str | None, typer.Option("--syndrome", help="Only this syndrome.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """List alerts with their review status; continuing alerts are grouped."""
    from reports.lifecycle import list_alerts
    from sentinel.console import print_frame

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format must be table, csv or json, got {fmt!r}")
    frame = list_alerts(
        state.settings,
        since=parse_date(since, "--since") if since else None,
        until=parse_date(until, "--until") if until else None,
        status=status,
        syndrome=syndrome,
    )
    print_frame(frame, fmt)  # type: ignore[arg-type]


@alerts_app.command("show")
def alerts_show(alert_id: Annotated[str, typer.Argument(help="Alert id.")]) -> None:
    """Show one alert, its group and its review history."""
    import json

    from reports.lifecycle import show_alert

    print(
        json.dumps(show_alert(state.settings, alert_id), ensure_ascii=False, indent=2, default=str)
    )


@alerts_app.command("update")
def alerts_update(
    alert_id: Annotated[str, typer.Argument(help="Alert id.")],
    status: Annotated[str | None, typer.Option("--status", help="investigating or closed.")] = None,
    outcome: Annotated[
        str | None,
        typer.Option("--outcome", help="true_outbreak, false_alarm or undetermined (to close)."),
    ] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Who investigates.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the record.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Who makes the change.")] = None,
) -> None:
    """Move an alert along new → investigating → closed, with assignee, outcome and notes."""
    from reports.lifecycle import update_alert

    update_alert(
        state.settings, alert_id, status=status, outcome=outcome, assignee=assignee, note=note,
        user=user,
    )  # fmt: skip
    print(f"alert {alert_id} updated", file=sys.stderr)


geo_app = typer.Typer(
    help="Area sets: the streets (boundaries, codes, names, population) Sentinel works in.",
    no_args_is_help=True,
)
app.add_typer(geo_app, name="geo")


@geo_app.command("load")
def geo_load(
    source: Annotated[
        Path, typer.Argument(help="Boundary file: GeoJSON, GeoPackage or Shapefile.")
    ],
    name: Annotated[str, typer.Option("--name", help="Name to register the area set under.")],
    code_field: Annotated[
        str, typer.Option("--code-field", help="Field with the 12-digit street code.")
    ],
    name_field: Annotated[str, typer.Option("--name-field", help="Field with the Chinese name.")],
    population_field: Annotated[
        str, typer.Option("--population-field", help="Field with the resident population.")
    ],
    name_en_field: Annotated[
        str | None, typer.Option("--name-en-field", help="Field with the English name.")
    ] = None,
    age_file: Annotated[
        Path | None,
        typer.Option("--age-file", help="CSV street_code,age_group,population (optional)."),
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="Layer of a GeoPackage with several.")
    ] = None,
    make_valid: Annotated[
        bool, typer.Option("--make-valid", help="Repair invalid polygons instead of refusing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an area set registered under NAME.")
    ] = False,
) -> None:
    """Validate a boundary file and register it as an area set (use it with area_set = NAME)."""
    from geo.loading import register_area_set

    if not source.is_file():
        raise UsageError(f"{source} does not exist")
    try:
        where = register_area_set(
            state.settings.home,
            name,
            source,
            code_field=code_field,
            name_field=name_field,
            name_en_field=name_en_field,
            population_field=population_field,
            age_file=age_file,
            layer=layer,
            make_valid=make_valid,
            overwrite=force,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(
        f"area set {name!r} registered in {where}; use it with area_set = {name!r} in "
        f"{state.settings.home / 'sentinel.toml'}",
        file=sys.stderr,
    )


@app.command()
def evaluate(
    method: Annotated[list[str], typer.Option("--method", help="Method to backtest (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for evaluation.csv/.md/.png.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="METHOD.KEY=VALUE (repeatable); VALUE may be a|b to compare settings."
        ),
    ] = None,
    baseline: Annotated[
        str, typer.Option("--baseline", help="simulated, or warehouse (its own history).")
    ] = "simulated",
    series: Annotated[
        int, typer.Option("--series", help="Series (sampled from the warehouse).")
    ] = 200,
    days: Annotated[int, typer.Option("--days", help="Days of each baseline.")] = 6 * 365,
    evaluate_days: Annotated[
        int, typer.Option("--evaluate-days", help="Days scored, at the end of the baseline.")
    ] = 365,
    size: Annotated[float, typer.Option("--size", help="Outbreak size (see --size-unit).")] = 3.0,
    size_unit: Annotated[
        str, typer.Option("--size-unit", help="sd (multiples of the baseline sd) or cases.")
    ] = "sd",
    shape: Annotated[
        str, typer.Option("--shape", help="flat, linear, lognormal or spike.")
    ] = "lognormal",
    duration: Annotated[int, typer.Option("--duration", help="Outbreak days.")] = 7,
    per_series: Annotated[int, typer.Option("--per-series", help="Outbreaks per series.")] = 1,
    gap: Annotated[int, typer.Option("--gap", help="Minimum days between outbreaks.")] = 14,
    grace: Annotated[
        int, typer.Option("--grace", help="Days after an outbreak whose alarms are not false.")
    ] = 0,
    target: Annotated[
        float, typer.Option("--target", help="Acceptable false alarms per 100 series-days.")
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same report.")] = 1,
    outcomes: Annotated[
        bool,
        typer.Option(
            "--outcomes/--no-outcomes",
            help="Also report each method's real PPV from the warehouse's reviewed alerts.",
        ),
    ] = True,
) -> None:
    """Backtest detectors: inject outbreaks into baselines, report sensitivity, false alarms, delay, PPV."""
    from sentinel.evaluating import parse_params, print_evaluation, run_evaluation

    if baseline not in ("simulated", "warehouse"):
        raise UsageError(f"--baseline must be simulated or warehouse, got {baseline!r}")
    report = run_evaluation(
        state.settings,
        methods=method,
        params=parse_params(param or []),
        baseline=baseline,  # type: ignore[arg-type]
        out_dir=out,
        n_series=series,
        days=days,
        outbreak_size=size,
        outbreak_shape=shape,
        outbreak_days=duration,
        outbreaks_per_series=per_series,
        seed=seed,
        evaluate_days=evaluate_days,
        size_unit=size_unit,
        min_gap=gap,
        n_days_after=grace,
        target=target,
        outcomes=outcomes,
    )
    print_evaluation(report)


@app.command()
def sql(
    query: Annotated[
        str | None,
        typer.Argument(help="SELECT statement; omit for an interactive read-only shell."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Run a read-only SQL query on the warehouse (DuckDB), or open a read-only DuckDB shell."""
    from sentinel.console import print_frame
    from warehouse.catalog import CATALOG_FILE, run_query

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format must be table, csv or json, got {fmt!r}")
    root = state.settings.warehouse_dir
    if query is None:
        db = root / CATALOG_FILE
        if not db.exists():
            raise UsageError(f"no warehouse at {root}; run `sentinel demo` or an ingest first")
        shell = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or shutil.which(
            "duckdb"
        )
        if shell is None:
            raise UsageError("the DuckDB shell (package duckdb-cli) is not installed")
        os.execv(shell, [shell, "-readonly", str(db)])
    frame = run_query(root, query)
    print_frame(frame, fmt)  # type: ignore[arg-type]


Format = Literal["table", "csv", "json"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad usage or input)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="sentinel", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stderr)
        return 2
    except click_exc.UsageError as exc:
        _fail(exc.format_message())
        return 2
    except SentinelError as exc:
        _fail(str(exc))
        return 2
    except typer.Abort:
        _fail("aborted")
        return 130
    except _warehouse_errors() as exc:
        _fail(str(exc))
        return 2
    return result if isinstance(result, int) else 0


def _warehouse_errors() -> tuple[type[Exception], ...]:
    from warehouse.errors import WarehouseError

    return (WarehouseError,)


def _fail(message: str) -> None:
    line = " ".join(message.split())
    print(f"sentinel: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
