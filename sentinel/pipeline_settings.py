"""How the scheduled pipeline (the Airflow DAGs) runs: the ``[pipeline]`` settings section.

```toml
[pipeline]
reconcile_days = 7          # reconcile_nightly re-pulls this many days of changes
lookback_hours = 2.0        # each hourly pull also re-reads this much before its hour
source_late_hours = 6.0     # a source with no data for this long is reported late
shard_by = "district"       # detection shards: "district" (6-digit code prefix) or "none"
stats_audiences = ["internal", "public"]   # leaders' briefs rendered by stats_weekly

[[pipeline.sources]]
name = "his"                # key of the source in logs, batches and task names
kind = "sql"                # sql, hl7, fhir or linelist
location = "sqlite:////data/his.db"   # file, folder or SQLAlchemy URL without password
# connection = "his_db"     # or: an Airflow connection id (AIRFLOW_CONN_HIS_DB) for sql
```

Secrets never live here: a database URL with a password comes from an Airflow connection
(``connection =``), which Airflow reads from ``AIRFLOW_CONN_*`` or a secrets backend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from sentinel.errors import UsageError

SourceKind = Literal["sql", "hl7", "fhir", "linelist"]
ShardBy = Literal["district", "none"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class PipelineSource:
    """One clinical source the hourly DAG pulls from.

    Attributes
    ----------
    name : str
        Short key (lower case, digits, underscores): task map index label and log field.
    kind : {"sql", "hl7", "fhir", "linelist"}
        How to read it (see ``sentinel ingest --source``).
    location : str or None
        File, folder or SQLAlchemy URL (without password).
    connection : str or None
        Airflow connection id holding the database URL (``sql`` sources only).
    """

    name: str
    kind: SourceKind
    location: str | None = None
    connection: str | None = None


@dataclass(frozen=True)
class PipelineSettings:
    """Settings of the scheduled pipeline.

    Attributes
    ----------
    sources : tuple of PipelineSource
        What ``ingest_hourly`` and ``reconcile_nightly`` pull, each a mapped task.
    reconcile_days : int
        Days of changes ``reconcile_nightly`` re-pulls (late and corrected records).
    lookback_hours : float
        Overlap of each hourly pull with the hour before (records committed late).
    source_late_hours : float
        Hours without data after which a source is reported late.
    shard_by : {"district", "none"}
        How ``detect_nightly`` splits the streets into mapped detection tasks.
    stats_audiences : tuple of str
        Audiences of the weekly leaders' brief.
    """

    sources: tuple[PipelineSource, ...] = ()
    reconcile_days: int = 7
    lookback_hours: float = 2.0
    source_late_hours: float = 6.0
    shard_by: ShardBy = "district"
    stats_audiences: tuple[str, ...] = ("internal", "public")

    def source(self, name: str) -> PipelineSource:
        """The source called ``name``; UsageError names the known ones otherwise."""
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise UsageError(f"no pipeline source named {name!r} (known: {known})")


def _number(data: Mapping[str, Any], key: str, default: float, where: str, *, whole: bool) -> Any:
    value = data.get(key, default)
    ok = isinstance(value, int) if whole else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or value < 0:
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"[pipeline] {key} in {where} must be {kind} ≥ 0, not {value!r}")
    return value if whole else float(value)


def _source(item: object, where: str) -> PipelineSource:
    if not isinstance(item, dict):
        raise UsageError(f"[[pipeline.sources]] in {where}: each source must be a table")
    unknown = sorted(set(item) - {"name", "kind", "location", "connection"})
    if unknown:
        raise UsageError(f"[[pipeline.sources]] in {where}: unknown key(s) {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"[[pipeline.sources]] in {where}: name {name!r} must be lower case letters, "
            "digits and underscores, starting with a letter"
        )
    kind = item.get("kind")
    if kind not in get_args(SourceKind):
        raise UsageError(
            f"[[pipeline.sources]] {name} in {where}: kind {kind!r} is not one of "
            + ", ".join(get_args(SourceKind))
        )
    location, connection = item.get("location"), item.get("connection")
    if (location is None) == (connection is None):
        raise UsageError(
            f"[[pipeline.sources]] {name} in {where}: give either location or connection"
        )
    if connection is not None and kind != "sql":
        raise UsageError(f"[[pipeline.sources]] {name} in {where}: connection is for sql sources")
    for key, value in (("location", location), ("connection", connection)):
        if value is not None and (not isinstance(value, str) or not value):
            raise UsageError(f"[[pipeline.sources]] {name} in {where}: {key} must be a string")
    if isinstance(location, str) and re.search(r"://[^/@]*:[^/@]+@", location):
        raise UsageError(
            f"[[pipeline.sources]] {name} in {where}: the URL holds a password; "
            "use an Airflow connection (connection = ...) instead"
        )
    return PipelineSource(name, cast(SourceKind, kind), location, connection)


def parse_pipeline_settings(data: Mapping[str, Any], where: str) -> PipelineSettings:
    """Parse the ``[pipeline]`` table of a settings file.

    Raises
    ------
    UsageError
        Unknown keys, bad numbers, duplicate or malformed sources, a password in a URL.
    """
    known = {
        "sources", "reconcile_days", "lookback_hours", "source_late_hours", "shard_by",
        "stats_audiences",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"[pipeline] in {where}: unknown key(s) {', '.join(unknown)}")
    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise UsageError(f"[pipeline] sources in {where} must be an array of tables")
    sources = tuple(_source(item, where) for item in raw_sources)
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"[pipeline] in {where}: source name(s) used twice: {', '.join(dupes)}")
    shard_by = data.get("shard_by", "district")
    if shard_by not in get_args(ShardBy):
        raise UsageError(f"[pipeline] shard_by in {where} must be district or none")
    audiences = data.get("stats_audiences", ["internal", "public"])
    if not isinstance(audiences, list) or not set(audiences) <= {"internal", "public"}:
        raise UsageError(f"[pipeline] stats_audiences in {where}: a list of internal, public")
    return PipelineSettings(
        sources=sources,
        reconcile_days=_number(data, "reconcile_days", 7, where, whole=True),
        lookback_hours=_number(data, "lookback_hours", 2.0, where, whole=False),
        source_late_hours=_number(data, "source_late_hours", 6.0, where, whole=False),
        shard_by=shard_by,
        stats_audiences=tuple(audiences),
    )
