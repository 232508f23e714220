"""One entry point over every source kind: ``KIND:LOCATION`` → raw visits and rejections.

Each kind's module converts at the edge to :data:`transform.records.RAW_COLUMNS`;
records it cannot read come back as ``rejected`` rows (``row_ref``, ``reason``), so the
batch can reconcile (extracted = loaded + quarantined).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

import pandas as pd
import sqlalchemy as sa

from extract.his import HisMapping

SourceKind = Literal["sql", "hl7", "fhir", "linelist"]
KINDS: tuple[str, ...] = get_args(SourceKind)
REJECTED_COLUMNS = ("row_ref", "reason")


@dataclass(frozen=True)
class Extracted:
    """Raw visits of one pull and the records that could not be read."""

    visits: pd.DataFrame
    rejected: pd.DataFrame


def no_rejections() -> pd.DataFrame:
    """An empty rejection table."""
    return pd.DataFrame({c: pd.Series(dtype="str") for c in REJECTED_COLUMNS})


def parse_source(spec: str) -> tuple[SourceKind, str]:
    """Split ``KIND:LOCATION``; raise ``ValueError`` naming the problem."""
    kind, sep, location = spec.partition(":")
    if not sep or not location:
        raise ValueError(
            f"--source must look like KIND:LOCATION (KIND one of {', '.join(KINDS)}), got {spec!r}"
        )
    if kind not in KINDS:
        raise ValueError(f"unknown source kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind != "sql" and not Path(location).exists():
        raise ValueError(f"{kind} source {location} does not exist")
    return kind, location  # type: ignore[return-value]


def safe_location(kind: SourceKind, location: str) -> str:
    """The location as it may be logged and stored (database passwords hidden)."""
    if kind != "sql":
        return str(Path(location).absolute())
    try:
        return sa.engine.make_url(location).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def _sql(
    location: str,
    since: datetime | None,
    his_mapping: HisMapping | None = None,
    until: datetime | None = None,
) -> Extracted:
    from extract.his import extract_his_visits

    visits = extract_his_visits(
        location, source="sql", since=since, mapping=his_mapping, until=until
    )
    return Extracted(visits, no_rejections())


def _hl7(location: str, since: datetime | None) -> Extracted:
    from extract.hl7v2 import extract_hl7_visits, latest_versions

    got = extract_hl7_visits(Path(location), source="hl7")
    return Extracted(latest_versions(got.visits), got.rejected)


def _fhir(location: str, since: datetime | None) -> Extracted:
    from extract.fhir import extract_fhir_visits

    got = extract_fhir_visits(Path(location), source="fhir", since=since)
    return Extracted(got.visits, got.rejected)


def _linelist(location: str, since: datetime | None) -> Extracted:
    from extract.linelist import extract_linelist

    got = extract_linelist(Path(location), source="linelist")
    return Extracted(got.visits, got.rejected)


EXTRACTORS: dict[str, Callable[[str, datetime | None], Extracted]] = {
    "sql": _sql,
    "hl7": _hl7,
    "fhir": _fhir,
    "linelist": _linelist,
}


def extract_source(
    kind: SourceKind,
    location: str,
    since: datetime | None = None,
    *,
    his_mapping: HisMapping | None = None,
    until: datetime | None = None,
) -> Extracted:
    """Pull raw visits (changed after ``since`` where the kind supports it).

    ``his_mapping`` names the tables and columns of a HIS database (``sql`` sources);
    ``until`` lets a ``sql`` source skip visits registered-changed after it.
    """
    if kind == "sql":
        return _sql(location, since, his_mapping, until)
    return EXTRACTORS[kind](location, since)
