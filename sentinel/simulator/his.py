"""The simulated hospital information system (HIS): a relational database.

Tables as a district HIS keeps them (English names; a real HIS is wired in by a column
mapping in settings): ``patients`` (master index per facility), ``registrations`` (one
row per outpatient/emergency visit, with the chief complaint), ``diagnoses`` (ICD-10, one
row per code), ``vital_signs`` (body temperature). Every row has ``updated_at``; a
correction updates the row in place and moves ``updated_at`` forward, which is what an
incremental extract by watermark sees. Sex uses GB/T 2261.1 codes (1 male, 2 female).

Any SQLAlchemy URL works; SQLite is the default. The simulator owns the tables it
creates: it refuses a database that has tables of these names without its marker table.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sentinel.errors import UsageError
from sentinel.simulator.records import DayBatch

metadata = sa.MetaData()
SIM_MARKER = sa.Table(
    "sentinel_simulator",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(200)),
)
FACILITIES = sa.Table(
    "facilities",
    metadata,
    sa.Column("facility_id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("street_code", sa.String(12), nullable=False),
)
PATIENTS = sa.Table(
    "patients",
    metadata,
    sa.Column("patient_id", sa.String(24), primary_key=True),
    sa.Column("facility_id", sa.String(16), nullable=False),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("id_card_no", sa.String(18)),
    sa.Column("gender", sa.String(1)),
    sa.Column("birth_date", sa.Date),
    sa.Column("mobile", sa.String(20)),
    sa.Column("address", sa.String(200)),
    sa.Column("addr_division_code", sa.String(12)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
REGISTRATIONS = sa.Table(
    "registrations",
    metadata,
    sa.Column("reg_id", sa.String(32), primary_key=True),
    sa.Column("patient_id", sa.String(24), nullable=False),
    sa.Column("facility_id", sa.String(16), nullable=False),
    sa.Column("dept_code", sa.String(8)),
    sa.Column("visit_type", sa.String(1), nullable=False),  # O outpatient, E emergency
    sa.Column("reg_time", sa.DateTime, nullable=False),
    sa.Column("chief_complaint", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
DIAGNOSES = sa.Table(
    "diagnoses",
    metadata,
    sa.Column("diag_id", sa.String(40), primary_key=True),
    sa.Column("reg_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("icd10_code", sa.String(10), nullable=False),
    sa.Column("diag_name", sa.String(100)),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
VITAL_SIGNS = sa.Table(
    "vital_signs",
    metadata,
    sa.Column("vital_id", sa.String(40), primary_key=True),
    sa.Column("reg_id", sa.String(32), nullable=False),
    sa.Column("item_code", sa.String(8), nullable=False),  # T = body temperature
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(8), nullable=False),
    sa.Column("measured_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
HIS_TABLES = (FACILITIES, PATIENTS, REGISTRATIONS, DIAGNOSES, VITAL_SIGNS)
# Created one by one in this order after the tables: SQLAlchemy keeps a table's indexes in
# a set, whose order changes between processes and would make the file differ.
INDEXES = (
    ("patients", "updated_at"),
    ("registrations", "patient_id"),
    ("registrations", "updated_at"),
    ("diagnoses", "reg_id"),
    ("diagnoses", "updated_at"),
    ("vital_signs", "reg_id"),
    ("vital_signs", "updated_at"),
)
GENDER_CODES = {"M": "1", "F": "2"}

# Row-at-a-time inserts are far too slow for a year of visits: the writer sends plain
# parameter tuples through the driver's executemany, with each dialect's own "insert
# unless present" for the patient index.
_IGNORE_VERB = {
    "sqlite": "INSERT OR IGNORE INTO",
    "postgresql": "INSERT INTO",
    "mysql": "INSERT IGNORE INTO",
    "mariadb": "INSERT IGNORE INTO",
}
_IGNORE_SUFFIX = {"postgresql": " ON CONFLICT DO NOTHING"}
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _rows(frame: pd.DataFrame, datetimes_as_text: bool) -> list[tuple[Any, ...]]:
    """Rows as tuples of plain Python values, None for missing.

    SQLite has no date type: datetimes go as the ISO text SQLAlchemy itself stores
    there (``YYYY-MM-DD HH:MM:SS.ffffff``), formatted in one vectorised step.
    """
    columns: list[list[Any]] = []
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind == "M" and datetimes_as_text:
            text = np.datetime_as_string(col.to_numpy().astype("datetime64[us]"), unit="us")
            text = np.char.replace(text.astype("U26"), "T", " ")
            columns.append([None if t == "NaT" else t for t in text.tolist()])
        elif col.dtype.kind == "M":
            columns.append([None if pd.isna(v) else v.to_pydatetime() for v in col])
        elif col.dtype.kind == "f":
            columns.append([None if np.isnan(v) else float(v) for v in col.to_numpy()])
        elif col.dtype.kind in "iu":
            columns.append(col.to_numpy().tolist())
        else:
            columns.append([None if pd.isna(v) else v for v in col.to_numpy(dtype=object).tolist()])
    return list(zip(*columns, strict=True))


class HisDatabaseWriter:
    """Writes :class:`DayBatch` es into a HIS database at ``url``."""

    def __init__(self, url: str, facilities: pd.DataFrame) -> None:
        try:
            self.engine = sa.create_engine(url)
            self.dialect = self.engine.dialect.name
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise UsageError(f"cannot use HIS URL {_safe(url)}: {exc}") from exc
        if self.dialect not in _IGNORE_VERB or self.engine.dialect.paramstyle not in _PLACEHOLDER:
            raise UsageError(
                f"HIS database dialect {self.dialect!r} is not supported (sqlite, postgresql, mysql)"
            )
        try:
            self._reset()
        except sa.exc.OperationalError as exc:
            raise UsageError(f"cannot open HIS database {_safe(url)}: {exc.orig}") from exc
        with self.engine.begin() as conn:
            fac = facilities.rename(columns={"name_zh": "name"})
            self._send(conn, FACILITIES, fac[["facility_id", "name", "level", "street_code"]])
            conn.execute(SIM_MARKER.insert(), [{"key": "schema", "value": "sentinel-his-v1"}])

    def _reset(self) -> None:
        """Drop and recreate the simulator's tables; refuse tables the simulator did not make."""
        existing = set(sa.inspect(self.engine).get_table_names())
        ours = {t.name for t in HIS_TABLES}
        if existing & ours and SIM_MARKER.name not in existing:
            clash = ", ".join(sorted(existing & ours))
            raise UsageError(
                f"the HIS database already has tables ({clash}) not made by the simulator; use an empty database"
            )
        metadata.drop_all(self.engine)
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            for table, column in INDEXES:
                conn.exec_driver_sql(f"CREATE INDEX ix_{table}_{column} ON {table} ({column})")

    def _send(
        self, conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, ignore: bool = False
    ) -> None:
        """executemany of ``frame`` (columns named as the table's) into ``table``."""
        if frame.empty:
            return
        mark = _PLACEHOLDER[self.engine.dialect.paramstyle]
        quote = self.engine.dialect.identifier_preparer.quote
        cols = ", ".join(quote(c) for c in frame.columns)
        verb = _IGNORE_VERB[self.dialect] if ignore else "INSERT INTO"
        suffix = _IGNORE_SUFFIX.get(self.dialect, "") if ignore else ""
        marks = ", ".join([mark] * len(frame.columns))
        sql = f"{verb} {quote(table.name)} ({cols}) VALUES ({marks}){suffix}"
        conn.exec_driver_sql(sql, _rows(frame, self.dialect == "sqlite"))

    def write(self, batch: DayBatch) -> int:
        """Insert the day's arrivals and apply its corrections; returns visits written."""
        with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
            if not batch.visits.empty:
                self._insert(conn, batch.visits)
            if not batch.corrections.empty:
                self._correct(conn, batch.corrections)
        return len(batch.visits)

    def _insert(self, conn: sa.Connection, v: pd.DataFrame) -> None:
        patients = v.drop_duplicates("patient_id", keep="first")
        patient_rows = pd.DataFrame(
            {
                "patient_id": patients["patient_id"],
                "facility_id": patients["facility_id"],
                "name": patients["name"],
                "id_card_no": patients["id_number"],
                "gender": patients["sex"].map(GENDER_CODES),
                "birth_date": patients["birth_date"].dt.date,
                "mobile": patients["phone"],
                "address": patients["address"],
                "addr_division_code": patients["residence_code"],
                "created_at": patients["created_at"],
                "updated_at": patients["created_at"],
            }
        )
        self._send(conn, PATIENTS, patient_rows, ignore=True)
        self._send(conn, REGISTRATIONS, _registrations(v))
        self._send(conn, DIAGNOSES, _diagnoses(v))
        self._send(conn, VITAL_SIGNS, _vitals(v))

    def _correct(self, conn: sa.Connection, fixes: pd.DataFrame) -> None:
        regs = _registrations(fixes)
        conn.execute(
            REGISTRATIONS.update()
            .where(REGISTRATIONS.c.reg_id == sa.bindparam("b_reg_id"))
            .values(chief_complaint=sa.bindparam("b_cc"), updated_at=sa.bindparam("b_updated_at")),
            [
                {"b_reg_id": r.reg_id, "b_cc": r.chief_complaint, "b_updated_at": r.updated_at}
                for r in regs.itertuples(index=False)
            ],
        )
        ids = fixes["visit_id"].tolist()
        conn.execute(DIAGNOSES.delete().where(DIAGNOSES.c.reg_id.in_(ids)))
        conn.execute(VITAL_SIGNS.delete().where(VITAL_SIGNS.c.reg_id.in_(ids)))
        self._send(conn, DIAGNOSES, _diagnoses(fixes))
        self._send(conn, VITAL_SIGNS, _vitals(fixes))

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> HisDatabaseWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _registrations(v: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "reg_id": v["visit_id"],
            "patient_id": v["patient_id"],
            "facility_id": v["facility_id"],
            "dept_code": v["dept"],
            "visit_type": np.where(v["setting"] == "emergency", "E", "O"),
            "reg_time": v["visit_time"],
            "chief_complaint": v["chief_complaint"],
            "created_at": v["created_at"],
            "updated_at": v["updated_at"],
        }
    )


def _diagnoses(v: pd.DataFrame) -> pd.DataFrame:
    rows: list[tuple[str, str, int, str, str, Any]] = []
    for reg, codes, names, upd in zip(
        v["visit_id"], v["diagnosis_codes"], v["diagnosis_names"], v["updated_at"], strict=True
    ):
        if not codes:
            continue
        for seq, (code, name) in enumerate(
            zip(codes.split(";"), names.split(";"), strict=True), start=1
        ):
            rows.append((f"{reg}-{seq}", reg, seq, code, name, upd))
    return pd.DataFrame(
        rows, columns=["diag_id", "reg_id", "seq", "icd10_code", "diag_name", "updated_at"]
    )


def _vitals(v: pd.DataFrame) -> pd.DataFrame:
    m = v[v["temperature_c"].notna()]
    return pd.DataFrame(
        {
            "vital_id": m["visit_id"] + "-T",
            "reg_id": m["visit_id"],
            "item_code": "T",
            "value": m["temperature_c"],
            "unit": "Cel",
            "measured_at": m["visit_time"],
            "updated_at": m["updated_at"],
        }
    )


def _safe(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def table_names(tables: Sequence[sa.Table] = HIS_TABLES) -> list[str]:
    """Names of the HIS tables, for documentation and the extract mapping."""
    return [t.name for t in tables]
