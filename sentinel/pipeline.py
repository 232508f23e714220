"""The scheduled pipeline's steps, one function per Airflow task (the DAGs only wire them).

Every step takes the settings and small values (source names, dates, paths) and returns a
small JSON-able dict, so XCom carries keys and paths, never frames. Every step is safe to
re-run: a pull of a source for a time window gets a batch id derived from the source and
the window (so a re-run replaces its own batch log row and quarantine), the visits upsert
keeps the latest version of each visit whatever the order of the pulls, and each day's
alerts replace that day's earlier ones.

Windows. The hourly pull of ``[start, end)`` reads the records changed in
``(start − lookback, end]`` (``updated_at``; database sources) and keeps only those whose
latest change is at or before ``end``: what a run loads depends on its window, not on when
it runs, so a backfill loads what the hourly runs loaded. File sources (HL7, FHIR, line
lists) are pulled by file modification time in ``(start, end]`` (files land whole).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sentinel.errors import SentinelError, UsageError
from sentinel.logs import log_event
from sentinel.pipeline_settings import PipelineSource
from sentinel.settings import Settings

if TYPE_CHECKING:
    from geo.areas import AreaSet

log = logging.getLogger("sentinel.pipeline")

ConnectionLookup = Callable[[str], str]
"""Turns an Airflow connection id into its URI (supplied by the DAG layer)."""

_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


class PublicationWithheld(SentinelError):
    """The day's data failed the quality gate: the bulletin is not published."""


def sqlalchemy_url(uri: str) -> str:
    """An Airflow connection URI as a SQLAlchemy URL (``postgres://`` → ``postgresql+psycopg2://``)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise UsageError(f"connection URI has no scheme: {uri.rsplit('@', maxsplit=1)[-1]!r}")
    return f"{_DRIVERS.get(scheme.lower(), scheme)}://{rest}"


def reference_frames(area: AreaSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``streets`` and ``facilities`` tables of an area set."""
    s = area.streets
    streets = pd.DataFrame(
        {
            "street_code": s["street_code"].to_numpy(),
            "name_zh": s["name_zh"].to_numpy(),
            "name_en": s["name_en"].to_numpy(),
            "population": s["population"].to_numpy(),
            "geometry_wkt": s.geometry.to_wkt().to_numpy(),
        }
    )
    columns = ["facility_id", "name_zh", "name_en", "level", "kind", "street_code"]
    return streets, area.facilities[columns]


def load_reference(settings: Settings, area: AreaSet | None = None) -> dict[str, int]:
    """Write the ``streets`` and ``facilities`` tables from the area set (idempotent)."""
    from geo.areas import load_area_set
    from warehouse.store import Warehouse

    area = area or load_area_set(settings.area_set, home=settings.home)
    streets, facilities = reference_frames(area)
    wh = Warehouse(settings.warehouse_dir)
    wh.replace_table("streets", streets)
    wh.replace_table("facilities", facilities)
    return {"streets": len(streets), "facilities": len(facilities)}


def source_names(settings: Settings) -> list[str]:
    """The configured sources' names (what the hourly DAG maps over)."""
    return [s.name for s in settings.pipeline.sources]


def _location(source: PipelineSource, lookup: ConnectionLookup | None) -> str:
    if source.location is not None:
        return source.location
    if lookup is None or source.connection is None:
        raise UsageError(f"source {source.name}: connection {source.connection!r} cannot be read")
    return sqlalchemy_url(lookup(source.connection))


def batch_key(source: str, purpose: str, start: dt.datetime, end: dt.datetime) -> str:
    """The batch id of a pull: a hash of the source, the kind of pull and its window."""
    text = f"{source}|{purpose}|{start.isoformat()}|{end.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _local(moment: dt.datetime) -> dt.datetime:
    """A window bound in the sources' local time without offset (as sources store times)."""
    from extract.times import to_local_naive

    return to_local_naive(moment).to_pydatetime()


def _files_in_window(location: Path, start: dt.datetime, end: dt.datetime) -> list[Path]:
    files = (
        [location] if location.is_file() else sorted(p for p in location.rglob("*") if p.is_file())
    )
    lo, hi = start.timestamp(), end.timestamp()
    return [p for p in files if lo < p.stat().st_mtime <= hi]


def _extract_window(
    settings: Settings, source: PipelineSource, location: str, start: dt.datetime, end: dt.datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from extract.his import HisMapping
    from extract.sources import extract_source, no_rejections

    if source.kind == "sql":
        since = start - dt.timedelta(hours=settings.pipeline.lookback_hours)
        got = extract_source(
            "sql", location, since, his_mapping=HisMapping.from_settings(settings.his), until=end
        )
        visits = got.visits
        if len(visits):
            visits = visits[pd.to_datetime(visits["updated_at"]) <= pd.Timestamp(end)]
        return visits.reset_index(drop=True), got.rejected
    # file sources: the files that landed in the window, local time as the file system's
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.timezone)
    files = _files_in_window(Path(location), start.replace(tzinfo=zone), end.replace(tzinfo=zone))
    parts = [extract_source(source.kind, str(p)) for p in files]
    if not parts:
        from transform.records import RAW_COLUMNS

        return pd.DataFrame({c: pd.Series(dtype=object) for c in RAW_COLUMNS}), no_rejections()
    return (
        pd.concat([p.visits for p in parts], ignore_index=True),
        pd.concat([p.rejected for p in parts], ignore_index=True),
    )


def ingest_window(
    settings: Settings,
    name: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    purpose: str = "hourly",
    lookup: ConnectionLookup | None = None,
) -> dict[str, Any]:
    """Pull source ``name`` for the window ``[start, end)`` and load it as one batch.

    Returns the batch id, the reconciled counts (extracted = loaded + quarantined), how
    many visits were new or replaced, and the visit dates touched.
    """
    from extract.sources import safe_location
    from geo.areas import load_area_set
    from transform.ingest import ingest_raw_visits
    from warehouse.store import Warehouse

    if not settings.hmac_key:
        raise UsageError("SENTINEL_HMAC_KEY is not set: patient keys need a secret")
    if end <= start:
        raise UsageError(f"empty window {start} … {end}")
    source = settings.pipeline.source(name)
    start, end = _local(start), _local(end)
    location = _location(source, lookup)
    raw, rejected = _extract_window(settings, source, location, start, end)
    batch_id = batch_key(name, purpose, start, end)
    result = ingest_raw_visits(
        raw,
        warehouse=Warehouse(settings.warehouse_dir),
        area=load_area_set(settings.area_set, home=settings.home),
        key=settings.hmac_key.encode(),
        source=source.kind,
        location=safe_location(source.kind, location),
        rejected=rejected,
        batch_id=batch_id,
    )
    out = {
        "source": name,
        "batch_id": result.batch_id,
        "window": [start.isoformat(), end.isoformat()],
        "extracted": result.extracted,
        "loaded": result.loaded,
        "quarantined": result.quarantined,
        "inserted": result.inserted,
        "replaced": result.replaced,
        "dates": list(result.dates),
    }
    log_event(log, f"{purpose}_pulled", **{k: v for k, v in out.items() if k != "dates"},
              days=len(result.dates))  # fmt: skip
    return out


def ingest_windows(
    home: Path,
    name: str,
    windows: Sequence[tuple[dt.datetime, dt.datetime]],
    *,
    hmac_key: str | None = None,
) -> list[dict[str, Any]]:
    """Pull source ``name`` of the Sentinel home ``home`` for each window in turn.

    A backfill outside Airflow; takes plain values so it can run in another process.
    The key defaults to the home's settings (``SENTINEL_HMAC_KEY``).
    """
    from dataclasses import replace

    from sentinel.settings import load_settings

    settings = load_settings(home)
    if hmac_key:
        settings = replace(settings, hmac_key=hmac_key)
    return [ingest_window(settings, name, a, b) for a, b in windows]


def reconcile_source(
    settings: Settings, name: str, end: dt.datetime, *, lookup: ConnectionLookup | None = None
) -> dict[str, Any]:
    """Re-pull the last ``reconcile_days`` of changes of source ``name`` up to ``end``.

    Late and corrected records come in; what changed is counted per visit date (new and
    replaced visits) and logged.
    """
    start = end - dt.timedelta(days=settings.pipeline.reconcile_days)
    out = ingest_window(settings, name, start, end, purpose="reconcile", lookup=lookup)
    changed = out["inserted"] + out["replaced"]
    log_event(log, "reconciled", source=name, changed=changed, dates=";".join(out["dates"]))
    return out


def touched_dates(results: Sequence[dict[str, Any]]) -> list[str]:
    """The union of the visit dates the pulls touched, sorted."""
    return sorted({d for r in results if r for d in r.get("dates", [])})


def detection_shards(settings: Settings) -> list[str]:
    """Shards of the nightly detection: district code prefixes (6 digits) or ``["all"]``."""
    from geo.areas import load_area_set

    if settings.pipeline.shard_by == "none":
        return ["all"]
    codes = load_area_set(settings.area_set, home=settings.home).codes
    return sorted({str(c)[:6] for c in codes})


def _staging(settings: Settings, day: dt.date) -> Path:
    return settings.home / "state" / "staging" / "alerts" / day.isoformat()


def detect_shard(settings: Settings, day: dt.date, shard: str) -> str:
    """Temporal alerts of one shard for ``day``, staged as a Parquet file; returns its path."""
    from sentinel.detecting import compute_alerts

    prefixes = None if shard == "all" else [shard]
    frames, summary = compute_alerts(settings, day, day, street_prefixes=prefixes)
    folder = _staging(settings, day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{shard}.parquet"
    tmp = path.with_suffix(".tmp")
    frames[day].to_parquet(tmp, index=False)
    os.replace(tmp, path)
    log_event(log, "shard_detected", day=day, shard=shard, series=summary.series,
              alerts=len(frames[day]))  # fmt: skip
    return str(path)


def publish_alerts(settings: Settings, day: dt.date, staged: Sequence[str]) -> dict[str, Any]:
    """Write the day's temporal alerts from every shard's staged file (replacing the day's)."""
    from sentinel.detecting import is_temporal
    from warehouse.store import Warehouse

    frames = [pd.read_parquet(p) for p in staged]
    frames = [f for f in frames if len(f)]
    alerts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(alerts):
        alerts = alerts.sort_values("alert_id", kind="stable").reset_index(drop=True)
    Warehouse(settings.warehouse_dir).write_alerts_days({day: alerts}, replace=is_temporal)
    log_event(log, "alerts_published", day=day, alerts=len(alerts), shards=len(staged))
    return {"date": day.isoformat(), "alerts": len(alerts)}


def scan_day(settings: Settings, day: dt.date) -> dict[str, Any]:
    """The space-time scan of ``day`` (every syndrome), alerts written."""
    from sentinel.cluster_scan import scan_warehouse

    summary = scan_warehouse(settings, day, day)
    return {"date": day.isoformat(), "clusters": len(summary.alerts)}


def days_to_redo(settings: Settings, day: dt.date, dates: Sequence[str]) -> list[str]:
    """Earlier days (within ``reconcile_days``) whose counts changed since they were analysed.

    Each analysed day's ``syndrome_daily`` partition is fingerprinted in
    ``state/analysed.json``; a day whose partition no longer matches, or that a pull
    touched, is analysed again. The analysis day itself is not listed.
    """
    first = day - dt.timedelta(days=settings.pipeline.reconcile_days)
    seen = _fingerprints(settings)
    redo = set()
    for d in (dt.date.fromisoformat(x) for x in dates):
        if first <= d < day:
            redo.add(d)
    for offset in range(1, settings.pipeline.reconcile_days + 1):
        d = day - dt.timedelta(days=offset)
        known = seen.get(d.isoformat())
        if known is not None and known != _fingerprint(settings, d):
            redo.add(d)
    return [d.isoformat() for d in sorted(redo)]


def _state_file(settings: Settings) -> Path:
    return settings.home / "state" / "analysed.json"


def _fingerprints(settings: Settings) -> dict[str, str]:
    path = _state_file(settings)
    return json.loads(path.read_text()) if path.is_file() else {}


def _fingerprint(settings: Settings, day: dt.date) -> str:
    from warehouse.store import Warehouse

    table = Warehouse(settings.warehouse_dir).read_dates("syndrome_daily", day, day).to_pandas()
    table = table.sort_values(list(table.columns)).reset_index(drop=True)
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()[:16]


def mark_analysed(settings: Settings, days: Sequence[dt.date]) -> None:
    """Record the fingerprints of the days just analysed."""
    seen = _fingerprints(settings)
    seen.update({d.isoformat(): _fingerprint(settings, d) for d in days})
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(seen.items())), indent=1))
    os.replace(tmp, path)


def redo_days(settings: Settings, days: Sequence[str]) -> dict[str, Any]:
    """Analyse earlier days again (temporal detectors and scan) after their counts changed."""
    from sentinel.cluster_scan import scan_warehouse
    from sentinel.detecting import detect_warehouse

    dates = [dt.date.fromisoformat(d) for d in days]
    for d in dates:
        detect_warehouse(settings, d, d)
        scan_warehouse(settings, d, d)
    mark_analysed(settings, dates)
    log_event(log, "days_reanalysed", days=";".join(days))
    return {"days": list(days)}


def render_day_bulletin(settings: Settings, day: dt.date) -> dict[str, Any]:
    """Check the day's data quality, then render its bulletin (HTML and PDF).

    Raises
    ------
    PublicationWithheld
        The quality gate failed; the reasons are written next to where the bulletin
        would be (``WITHHELD.txt``) and in the message.
    """
    from reports.bulletin import render_bulletin
    from sentinel.operations import quality_gate
    from warehouse.store import Warehouse

    out_dir = settings.home / "reports" / day.isoformat()
    gate = quality_gate(Warehouse(settings.warehouse_dir), day)
    notice = out_dir / "WITHHELD.txt"
    if not gate.ok:
        out_dir.mkdir(parents=True, exist_ok=True)
        notice.write_text(
            f"Bulletin of {day} withheld: the day's data failed the quality gate.\n"
            + "".join(f"- {r}\n" for r in gate.reasons),
            encoding="utf-8",
        )
        log_event(log, "bulletin_withheld", day=day, reasons=" | ".join(gate.reasons))
        raise PublicationWithheld(f"bulletin of {day} withheld: " + "; ".join(gate.reasons))
    notice.unlink(missing_ok=True)
    paths = render_bulletin(settings, day, out_dir)
    log_event(log, "bulletin_rendered", day=day, html=paths.html)
    return {"date": day.isoformat(), "html": str(paths.html), "pdf": str(paths.pdf)}


def send_day_bulletin(settings: Settings, day: dt.date, pdf: str | None) -> dict[str, Any]:
    """Send the day's bulletin once (e-mail and webhook as configured); a re-run does not resend."""
    from sentinel.reporting import deliver_bulletin

    marker = settings.home / "state" / "sent" / f"{day.isoformat()}.json"
    if marker.is_file():
        return {"date": day.isoformat(), "sent": json.loads(marker.read_text()), "again": True}
    notify = settings.notify
    done = deliver_bulletin(
        settings,
        day,
        Path(pdf) if pdf else None,
        email=bool(notify.recipients and notify.smtp_host),
        webhook=bool(notify.webhook_url),
    )
    if done:  # nothing configured: nothing to remember, a later run with settings sends
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(done))
    return {"date": day.isoformat(), "sent": done, "again": False}


def weekly_stats(settings: Settings, end: dt.date) -> dict[str, Any]:
    """The leaders' brief of the week ending on ``end``, for each configured audience."""
    from reports.stats import render_stats

    paths = {}
    for audience in settings.pipeline.stats_audiences:
        got = render_stats(settings, period="week", end=end, audience=audience)  # type: ignore[arg-type]
        paths[audience] = str(got.html)
    log_event(log, "stats_rendered", end=end, audiences=",".join(paths))
    return {"end": end.isoformat(), "html": paths}


def rebuild_daily(settings: Settings, dates: Sequence[str]) -> list[str]:
    """Recompute ``syndrome_daily`` (and the age-group table) for ``dates`` from ``visits``."""
    from transform.ingest import default_definitions
    from warehouse.store import Warehouse

    wh = Warehouse(settings.warehouse_dir)
    loaded = set(wh.partition_dates("visits"))
    days = [d for d in (dt.date.fromisoformat(x) for x in dates) if d in loaded]
    if days:
        wh.rebuild_syndrome_daily(sorted(days), default_definitions().syndrome_names)
    log_event(log, "daily_rebuilt", days=len(days))
    return [d.isoformat() for d in days]


def report_lateness(settings: Settings, now: dt.datetime) -> int:
    """Tell the operators about late sources and silent facilities, once a day each.

    Returns how many new problems were reported.
    """
    from sentinel.operations import check_lateness, notify_operators
    from warehouse.store import Warehouse

    now = _local(now)
    events = check_lateness(
        Warehouse(settings.warehouse_dir), now, source_hours=settings.pipeline.source_late_hours
    )
    path = settings.home / "state" / "lateness_reported.json"
    seen: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    fresh = []
    for event in events:
        key = f"{event.kind}|{event.message}"
        if seen.get(key) != now.date().isoformat():
            fresh.append(event)
            seen[key] = now.date().isoformat()
    for event in fresh:
        for problem in notify_operators(settings.notify, event):
            log_event(log, "lateness_not_delivered", problem=problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(seen, indent=1, sort_keys=True))
    log_event(log, "lateness_checked", problems=len(events), reported=len(fresh))
    return len(fresh)
