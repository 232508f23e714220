"""The HIS writer on real PostgreSQL and MariaDB servers gives the same rows as SQLite."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from sentinel.errors import UsageError
from sentinel.simulator.run import SimulationOptions, simulate

QUERY = {
    "registrations": "SELECT reg_id, patient_id, facility_id, visit_type, reg_time, chief_complaint, updated_at "
    "FROM registrations ORDER BY reg_id",
    "patients": "SELECT patient_id, name, id_card_no, gender, birth_date, mobile, address, addr_division_code "
    "FROM patients ORDER BY patient_id",
    "diagnoses": "SELECT diag_id, icd10_code, diag_name FROM diagnoses ORDER BY diag_id",
    "vital_signs": "SELECT vital_id, value FROM vital_signs ORDER BY vital_id",
}


def _dump(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            out = {name: pd.read_sql(sa.text(q), conn) for name, q in QUERY.items()}
    finally:
        engine.dispose()
    for frame in out.values():
        for col in frame.columns:
            if col.endswith(("_time", "_at", "_date")):
                frame[col] = pd.to_datetime(frame[col]).astype("datetime64[us]")
    return out


@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("ref")
    simulate(SimulationOptions(out=out, days=6, start=date(2025, 6, 1), seed=3, formats=("his",)))
    return _dump(f"sqlite:///{out / 'his.sqlite'}")


@pytest.mark.servers
@pytest.mark.parametrize("server", ["postgres_url", "mariadb_url"])
def test_server_his_matches_sqlite(
    server: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_reference: dict[str, pd.DataFrame],
) -> None:
    url = request.getfixturevalue(server)
    simulate(
        SimulationOptions(
            out=tmp_path, days=6, start=date(2025, 6, 1), seed=3, formats=("his",), his_url=url
        )
    )
    got = _dump(url)
    for name, ref in sqlite_reference.items():
        assert len(ref) > 0
        pd.testing.assert_frame_equal(got[name], ref, check_dtype=False, obj=name)
    # a second run into the same database replaces the simulator's own tables
    simulate(
        SimulationOptions(
            out=tmp_path, days=6, start=date(2025, 6, 1), seed=3, formats=("his",), his_url=url
        )
    )
    assert len(_dump(url)["registrations"]) == len(sqlite_reference["registrations"])


@pytest.mark.servers
def test_refuses_foreign_tables(postgres_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE patients (id integer)")
    engine.dispose()
    with pytest.raises(UsageError, match="not made by the simulator"):
        simulate(SimulationOptions(out=tmp_path, days=2, formats=("his",), his_url=postgres_url))


@pytest.mark.servers
@pytest.mark.parametrize("server", ["postgres_url", "mariadb_url"])
def test_extract_from_server_matches_sqlite(
    server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The HIS extractor reads PostgreSQL and MariaDB the same as SQLite, watermark included."""
    from extract.his import extract_his_visits

    url = request.getfixturevalue(server)
    opts = {"days": 4, "start": date(2025, 6, 1), "seed": 3, "formats": ("his",)}
    simulate(SimulationOptions(out=tmp_path / "lite", **opts))  # type: ignore[arg-type]
    simulate(SimulationOptions(out=tmp_path / "srv", his_url=url, **opts))  # type: ignore[arg-type]
    lite = extract_his_visits(f"sqlite:///{tmp_path / 'lite' / 'his.sqlite'}").sort_values(
        "source_visit_id"
    )
    srv = extract_his_visits(url).sort_values("source_visit_id")
    cols = ["source_visit_id", "facility_id", "visit_time", "setting", "sex", "name", "id_number",
            "residence_code", "chief_complaint", "diagnosis_codes", "temperature_c", "updated_at"]  # fmt: skip
    pd.testing.assert_frame_equal(
        srv[cols].reset_index(drop=True), lite[cols].reset_index(drop=True), check_dtype=False
    )
    since = lite["updated_at"].quantile(0.8)
    newer = extract_his_visits(url, since=since.to_pydatetime())
    assert set(newer["source_visit_id"]) == set(
        lite.loc[lite["updated_at"] > since, "source_visit_id"]
    )
