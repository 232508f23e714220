"""The one schema of the warehouse: tables, columns, types, descriptions.

Everything else (the Parquet writer, the DuckDB views, validation, the documentation in
``docs/warehouse.md``) is derived from :data:`TABLES`. Change a table here and regenerate
the documentation with ``python -m warehouse.docs > docs/warehouse.md``.

Times are local (Asia/Shanghai) and naive; see :data:`TIME_ZONE`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "TABLES",
    "TIME_ZONE",
    "Column",
    "Table",
    "arrow_schema",
    "duckdb_type",
    "file_schema",
    "render_markdown",
]

TIME_ZONE = "Asia/Shanghai"
"""Zone of every naive timestamp and date in the warehouse."""

_STR = pa.string()
_STR_LIST = pa.list_(pa.string())
_DATE = pa.date32()
_TS = pa.timestamp("us")


@dataclass(frozen=True)
class Column:
    """One column of a warehouse table.

    Parameters
    ----------
    name : str
        Column name, as seen in the DuckDB views.
    type : pyarrow.DataType
        Arrow type of the column; the Parquet and DuckDB types follow from it.
    description : str
        What the column holds, for the generated documentation and the view comments.
    nullable : bool
        Whether missing values are allowed.
    values : tuple of str, optional
        The allowed values of a code column (checked on write); ``None`` for free values.
    """

    name: str
    type: pa.DataType
    description: str
    nullable: bool = True
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Table:
    """One warehouse table (seen by analysts as a DuckDB view of the same name).

    Parameters
    ----------
    name : str
        Table name; also the folder name under the warehouse root.
    description : str
        What one row is, for the generated documentation and the view comment.
    columns : tuple of Column
        Columns in view order.
    key : tuple of str, optional
        Columns that identify a row, if any.
    partition_by : str, optional
        Column that names the partition folder (``<column>=<value>/data.parquet``). That
        column is not stored inside the Parquet file; readers take it from the path.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] | None
    partition_by: str | None

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of all columns, in view order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """Return the column called ``name`` (``KeyError`` if there is none)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def layout(self) -> str:
        """Path pattern of the table's Parquet files, relative to the warehouse root."""
        if self.partition_by is None:
            return f"{self.name}/data.parquet"
        return f"{self.name}/{self.partition_by}=<value>/data.parquet"


def _c(
    name: str,
    type_: pa.DataType,
    description: str,
    *,
    nullable: bool = False,
    values: tuple[str, ...] | None = None,
) -> Column:
    # Inside this module columns are NOT NULL unless said otherwise: it reads better.
    return Column(name, type_, description, nullable, values)


_SETTINGS = ("outpatient", "emergency", "inpatient")
_SEXES = ("M", "F", "U")
_AGE_GROUPS = ("0-4", "5-14", "15-24", "25-59", "60+")
_RESIDENCE_METHODS = ("code", "point", "address", "unresolved")

_VISITS = Table(
    name="visits",
    description=(
        "One row per visit, its latest version, de-identified. Loaded by upsert on "
        "`visit_key`: a version with a later `updated_at` replaces the stored one, an "
        "older one never does."
    ),
    key=("visit_key",),
    partition_by="visit_date",
    columns=(
        _c(
            "visit_key",
            _STR,
            "Pseudonymous visit key: hex HMAC of the source and the source's visit id "
            "(computed upstream; the secret never reaches the warehouse).",
        ),
        _c("source", _STR, "Source system that delivered the visit."),
        _c("facility_id", _STR, "Facility of the visit (see `facilities`)."),
        _c(
            "visit_date",
            _DATE,
            "Local (Asia/Shanghai) calendar date of `visit_time`; the partition column.",
        ),
        _c("visit_time", _TS, "Time of the visit, local Asia/Shanghai time without offset."),
        _c("setting", _STR, "Care setting.", values=_SETTINGS),
        _c(
            "patient_key",
            _STR,
            "Pseudonymous patient key (HMAC of the source patient id); links visits of one "
            "patient, cannot be reversed from the warehouse.",
        ),
        _c("sex", _STR, "Sex: M, F or U (unknown).", values=_SEXES),
        _c(
            "age_years",
            pa.int16(),
            "Age in completed years at the visit; null when unknown.",
            nullable=True,
        ),
        _c(
            "age_group",
            _STR,
            "Age group of `age_years`; null when the age is unknown.",
            nullable=True,
            values=_AGE_GROUPS,
        ),
        _c(
            "street_code",
            _STR,
            "12-digit statistical code of the street (sub-district or town) of residence; "
            "null when the residence could not be resolved.",
            nullable=True,
        ),
        _c(
            "residence_method",
            _STR,
            "How `street_code` was found: from a residence code, a point (lat/lon), an "
            "address, or not at all.",
            values=_RESIDENCE_METHODS,
        ),
        _c(
            "chief_complaint",
            _STR,
            "Chief complaint as written, scrubbed of identifiers (names, ID and phone "
            "numbers, addresses).",
            nullable=True,
        ),
        _c("diagnosis_codes", _STR_LIST, "ICD-10 codes of the visit; empty list when none."),
        _c(
            "temperature_c",
            pa.float64(),
            "Body temperature in °C; null when not measured.",
            nullable=True,
        ),
        _c(
            "syndromes",
            _STR_LIST,
            "Syndromes the visit is classified into, sorted; empty list when none.",
        ),
        _c(
            "updated_at",
            _TS,
            "Version time from the source (local time); the later version of a visit wins.",
        ),
        _c("batch_id", _STR, "Batch that delivered the stored version (see `batches`)."),
    ),
)

_SYNDROME_DAILY = Table(
    name="syndrome_daily",
    description=(
        "Daily counts per street of residence and syndrome, a dense grid (zero rows "
        "included), rebuilt from `visits` for the dates a load touched. Visits without a "
        "`street_code`, or with one not in `streets`, are not counted."
    ),
    key=("date", "street_code", "syndrome"),
    partition_by="date",
    columns=(
        _c("date", _DATE, "Visit date (local); the partition column."),
        _c("street_code", _STR, "Street of residence (see `streets`)."),
        _c("syndrome", _STR, "Syndrome name."),
        _c("count", pa.int64(), "Visits of residents of the street that day with the syndrome."),
        _c("visits", pa.int64(), "All-cause visits of residents of the street that day."),
    ),
)

_SYNDROME_AGE_DAILY = Table(
    name="syndrome_age_daily",
    description=(
        "Daily counts per street of residence, age group and syndrome, rebuilt with "
        "`syndrome_daily` for the same dates. Sparse: only non-zero counts are stored (a "
        "missing row is a zero for a date `syndrome_daily` holds). Visits without a "
        "`street_code` or an `age_group` are not counted here (they are in `syndrome_daily`)."
    ),
    key=("date", "street_code", "age_group", "syndrome"),
    partition_by="date",
    columns=(
        _c("date", _DATE, "Visit date (local); the partition column."),
        _c("street_code", _STR, "Street of residence (see `streets`)."),
        _c("age_group", _STR, "Age group of the patients.", values=_AGE_GROUPS),
        _c("syndrome", _STR, "Syndrome name."),
        _c("count", pa.int64(), "Visits of residents of the street in the age group that day."),
    ),
)

_SEVERITIES = ("high", "medium", "low")

_ALERTS = Table(
    name="alerts",
    description="One row per alert raised by a detector for an analysis day.",
    key=("alert_id",),
    partition_by="date",
    columns=(
        _c("alert_id", _STR, "Alert identifier, stable when the same day is re-analysed."),
        _c("date", _DATE, "Analysis day the alert is about; the partition column."),
        _c("syndrome", _STR, "Syndrome of the alert."),
        _c("street_codes", _STR_LIST, "Streets concerned (one, or a cluster)."),
        _c(
            "age_group",
            _STR,
            "Age group of the series that alarmed; null for all ages.",
            nullable=True,
            values=_AGE_GROUPS,
        ),
        _c("detector", _STR, "Detector (method name) that raised the alert."),
        _c("observed", pa.float64(), "Observed count."),
        _c("expected", pa.float64(), "Expected count.", nullable=True),
        _c(
            "upperbound",
            pa.float64(),
            "Threshold the observed count exceeded (the detector's upper bound).",
            nullable=True,
        ),
        _c("score", pa.float64(), "Detector score (statistic).", nullable=True),
        _c("p_value", pa.float64(), "p-value, when the detector gives one.", nullable=True),
        _c(
            "severity",
            _STR,
            "Severity from the excess over the upper bound: high (at least twice the bound "
            "and 5 cases over it), medium (1.5 times, or 3 cases over), low otherwise.",
            values=_SEVERITIES,
        ),
        _c("status", _STR, "Review status."),
        _c("created_at", _TS, "When the alert was created (local time)."),
        _c(
            "params",
            _STR,
            "Detector parameters used, as JSON (defaults included).",
            nullable=True,
        ),
        _c(
            "window_start",
            _DATE,
            "First day of a space-time cluster's window (it ends on `date`); null for "
            "temporal detectors, whose window is the day itself.",
            nullable=True,
        ),
        _c(
            "relative_risk",
            pa.float64(),
            "Cluster relative risk: (observed/expected inside) / (observed/expected outside).",
            nullable=True,
        ),
        _c("llr", pa.float64(), "Cluster log-likelihood ratio.", nullable=True),
        _c(
            "recurrence_interval_days",
            pa.float64(),
            "Cluster recurrence interval: 1/p days (daily prospective analysis).",
            nullable=True,
        ),
        _c(
            "announcement",
            _STR,
            "new: first seen; ongoing: continues an earlier alert (same syndrome, shared "
            "streets, overlapping days) without growing; grown: continues one and grew.",
            values=("new", "ongoing", "grown"),
        ),
        _c(
            "continues",
            _STR,
            "alert_id of the earlier alert this one continues, if any.",
            nullable=True,
        ),
    ),
)

_REVIEW_STATUSES = ("new", "investigating", "closed")
_OUTCOMES = ("true_outbreak", "false_alarm", "undetermined")

_ALERT_REVIEWS = Table(
    name="alert_reviews",
    description=(
        "Review history of alerts, append-only: one row per change of status, outcome, "
        "assignee or note. Kept apart from `alerts`, which detector re-runs rewrite. The "
        "current review of a group of continuing alerts is its latest row (by "
        "`updated_at`) over all alerts of the group. Notes are free text written by CDC "
        "staff and must not hold patient identifiers."
    ),
    key=("alert_id", "updated_at"),
    partition_by=None,
    columns=(
        _c("alert_id", _STR, "Alert reviewed (see `alerts`)."),
        _c(
            "status",
            _STR,
            "Review status after this change: new, investigating or closed.",
            values=_REVIEW_STATUSES,
        ),
        _c(
            "outcome",
            _STR,
            "Outcome of a closed review: true_outbreak, false_alarm or undetermined; null "
            "while not closed.",
            nullable=True,
            values=_OUTCOMES,
        ),
        _c("assignee", _STR, "Staff member in charge after this change.", nullable=True),
        _c("note", _STR, "Note added with this change.", nullable=True),
        _c("updated_by", _STR, "Staff member (user name) who made the change.", nullable=True),
        _c("updated_at", _TS, "When the change was made (local time)."),
    ),
)

_STREETS = Table(
    name="streets",
    description="Streets (sub-districts and towns) of the area under surveillance.",
    key=("street_code",),
    partition_by=None,
    columns=(
        _c("street_code", _STR, "12-digit statistical division code."),
        _c("name_zh", _STR, "Name in Chinese."),
        _c("name_en", _STR, "Name in English (pinyin).", nullable=True),
        _c("population", pa.int64(), "Resident population.", nullable=True),
        _c(
            "geometry_wkt",
            _STR,
            "Boundary as WKT (longitude/latitude, WGS 84); may be approximate.",
            nullable=True,
        ),
    ),
)

_FACILITIES = Table(
    name="facilities",
    description="Health facilities that report visits.",
    key=("facility_id",),
    partition_by=None,
    columns=(
        _c("facility_id", _STR, "Facility identifier as used in `visits`."),
        _c("name_zh", _STR, "Name in Chinese."),
        _c("name_en", _STR, "Name in English.", nullable=True),
        _c("level", _STR, "Hospital level or grade.", nullable=True),
        _c(
            "kind",
            _STR,
            "Kind of facility (general hospital, community health centre…).",
            nullable=True,
        ),
        _c("street_code", _STR, "Street where the facility is.", nullable=True),
    ),
)

_QUARANTINE = Table(
    name="quarantine",
    description=(
        "Rows set aside during a load, with the reason. Holds a reference to the rejected "
        "record (file:line, message control id…), never its identifiers."
    ),
    key=None,
    partition_by="batch_id",
    columns=(
        _c("batch_id", _STR, "Batch of the load; the partition column."),
        _c("source", _STR, "Source system."),
        _c("row_ref", _STR, "Reference to the record: file:line, message control id…"),
        _c("reason", _STR, "Why the record was set aside."),
        _c("stage", _STR, "Pipeline stage that rejected it (extract, transform, validate…)."),
        _c("quarantined_at", _TS, "When it was set aside (local time)."),
    ),
)

_BATCHES = Table(
    name="batches",
    description="The load log: one row per batch (load of one source).",
    key=("batch_id",),
    partition_by="batch_id",
    columns=(
        _c("batch_id", _STR, "Batch identifier; the partition column."),
        _c("source", _STR, "Source system."),
        _c("location", _STR, "Where the data came from, without passwords.", nullable=True),
        _c("extracted", pa.int64(), "Records extracted."),
        _c("loaded", pa.int64(), "Visits written (inserted or replaced)."),
        _c("quarantined", pa.int64(), "Records set aside."),
        _c("replaced", pa.int64(), "Visits that replaced an earlier version."),
        _c("started", _TS, "Start of the load (local time)."),
        _c("finished", _TS, "End of the load (local time); null while running.", nullable=True),
        _c("status", _STR, "Outcome: running, succeeded, failed…"),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        _VISITS,
        _SYNDROME_DAILY,
        _SYNDROME_AGE_DAILY,
        _ALERTS,
        _ALERT_REVIEWS,
        _STREETS,
        _FACILITIES,
        _QUARANTINE,
        _BATCHES,
    )
}
"""Every table of the warehouse, by name."""


def _table(table_name: str) -> Table:
    try:
        return TABLES[table_name]
    except KeyError:
        known = ", ".join(TABLES)
        raise KeyError(f"unknown warehouse table {table_name!r} (known: {known})") from None


def _schema(columns: Iterable[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in columns])


def arrow_schema(table_name: str) -> pa.Schema:
    """Return the Arrow schema of a table, partition column included, in view order.

    Parameters
    ----------
    table_name : str
        A key of :data:`TABLES`.

    Returns
    -------
    pyarrow.Schema
        One field per column, with the column's type and nullability.
    """
    return _schema(_table(table_name).columns)


def file_schema(table_name: str) -> pa.Schema:
    """Return the Arrow schema of a table's Parquet files: without the partition column."""
    table = _table(table_name)
    return _schema(c for c in table.columns if c.name != table.partition_by)


_DUCKDB_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
}


def _duckdb_type_of(type_: pa.DataType) -> str:
    if pa.types.is_list(type_):
        return _duckdb_type_of(type_.value_type) + "[]"
    try:
        return _DUCKDB_TYPES[type_]
    except KeyError:
        raise TypeError(f"no DuckDB type mapped for Arrow type {type_}") from None


def duckdb_type(column: Column) -> str:
    """Return the DuckDB SQL type of a column, e.g. ``VARCHAR[]`` for a list of strings.

    Parameters
    ----------
    column : Column
        A column of one of :data:`TABLES`.

    Returns
    -------
    str
        The type as written in DuckDB SQL (``CAST(NULL AS <type>)`` is valid).
    """
    return _duckdb_type_of(column.type)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """Render the documentation of every table and column as Markdown.

    Returns
    -------
    str
        The content of ``docs/warehouse.md``, starting with a notice that it is generated.
    """
    lines = [
        "<!-- Generated from warehouse/schema.py by `python -m warehouse.docs`: "
        "do not edit by hand. -->",
        "",
        "# Warehouse tables",
        "",
        "Each table is a set of Parquet files under `$SENTINEL_HOME/warehouse` and a view of "
        "the same name in the DuckDB catalog `$SENTINEL_HOME/warehouse/sentinel.duckdb` "
        "(`sentinel sql`, or `duckdb -readonly` on that file). Times and dates are local "
        f"{TIME_ZONE} time without offset. The partition column of a partitioned table is "
        "kept in the folder name, not in the file. See `warehouse/README.md` for the "
        "contract (atomic writes, upsert rules, locking).",
        "",
    ]
    for table in TABLES.values():
        key = ", ".join(f"`{k}`" for k in table.key) if table.key else "none"
        partition = f"`{table.partition_by}`" if table.partition_by else "none"
        lines += [
            f"## `{table.name}`",
            "",
            table.description,
            "",
            f"- Files: `{table.layout}`",
            f"- Key: {key}",
            f"- Partitioned by: {partition}",
            "",
            "| Column | Type | Null | Description |",
            "|---|---|---|---|",
        ]
        for c in table.columns:
            description = c.description
            if c.values is not None:
                description += " One of: " + ", ".join(f"`{v}`" for v in c.values) + "."
            null = "yes" if c.nullable else "no"
            lines.append(f"| `{c.name}` | `{duckdb_type(c)}` | {null} | {_md_cell(description)} |")
        lines.append("")
    return "\n".join(lines)
