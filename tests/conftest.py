"""Shared fixtures: real local database servers (started if down, loud failure otherwise)."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ensure_server(port: int, name: str) -> None:
    if _port_open(port):
        return
    subprocess.run([str(REPO / ".ci" / "services")], check=False, timeout=90)
    if not _port_open(port):
        pytest.fail(
            f"{name} is not running on 127.0.0.1:{port} and could not be started (.ci/services)"
        )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    _ensure_server(5432, "PostgreSQL")
    name = f"sentinel_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database on the local server, dropped afterwards."""
    _ensure_server(3306, "MariaDB")
    name = f"sentinel_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/")
    with admin.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


ID_NUMBER_RE = r"(?<![0-9a-f])\d{17}[\dX](?![0-9a-f])"
MOBILE_RE = r"(?<![0-9a-f])1[3-9]\d{9}(?![0-9a-f])"


def scan_for_identifiers(
    root: Path, names: set[str], exact: set[str], planted_names: set[str]
) -> int:
    """Fail if any Parquet cell, DuckDB file or log under ``root`` holds an identifier.

    ``exact``: values that must never be a whole cell (addresses, source ids); ``names``
    must never appear in logs; ``planted_names`` (names clinicians typed into complaints)
    must never appear inside any cell. Returns the number of cells scanned.
    """
    import re

    import pandas as pd

    id_number, mobile = re.compile(ID_NUMBER_RE), re.compile(MOBILE_RE)
    cells = 0
    for parquet in root.rglob("*.parquet"):
        frame = pd.read_parquet(parquet)
        for col in frame.columns:
            for value in frame[col].tolist():
                cell = str(value)
                cells += 1
                assert not id_number.search(cell), f"ID number in {parquet.name}:{col}"
                assert not mobile.search(cell), f"phone number in {parquet.name}:{col}"
                assert cell not in exact, f"identifier in {parquet.name}:{col}"
                assert not any(n in cell for n in planted_names), f"name in {parquet.name}:{col}"
    for text_file in [*root.rglob("*.log"), *root.rglob("*.json")]:
        text = text_file.read_text(encoding="utf-8")
        assert not id_number.search(text) and not mobile.search(text), text_file
        assert not any(n in text for n in names if len(n) >= 2), text_file
    for db in root.rglob("*.duckdb"):
        raw = db.read_bytes().decode("utf-8", errors="ignore")
        assert not id_number.search(raw) and not any(n in raw for n in planted_names), db
    return cells


@pytest.fixture
def identifier_scan() -> object:
    """:func:`scan_for_identifiers`, for tests in any folder."""
    return scan_for_identifiers
