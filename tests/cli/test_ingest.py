"""`sentinel ingest --source sql:URL`: secret required, watermark, idempotent re-runs."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from sentinel.cli import main
from sentinel.simulator.run import SimulationOptions, simulate
from warehouse.catalog import run_query


@pytest.fixture(scope="module")
def his(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("his")
    simulate(SimulationOptions(out=out, days=7, start=date(2025, 9, 1), seed=4, formats=("his",)))
    return out / "his.sqlite"


def test_refuses_without_secret(
    tmp_path: Path, his: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SENTINEL_HMAC_KEY", raising=False)
    assert main(["--home", str(tmp_path), "ingest", "--source", f"sql:sqlite:///{his}"]) == 2
    err = capsys.readouterr().err
    assert "SENTINEL_HMAC_KEY" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "warehouse").exists()


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nonsense", "KIND:LOCATION"),
        ("ftp:/x", "unknown source kind"),
        ("hl7:/no/such/file", "does not exist"),
    ],
)
def test_bad_source_spec(
    spec: str,
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SENTINEL_HMAC_KEY", "s3cret")
    assert main(["--home", str(tmp_path), "ingest", "--source", spec]) == 2
    assert needle in capsys.readouterr().err


def test_sql_ingest_watermark_and_correction(
    tmp_path: Path, his: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINEL_HMAC_KEY", "s3cret")
    db = tmp_path / "his.sqlite"
    db.write_bytes(his.read_bytes())
    home = tmp_path / "home"
    args = ["--home", str(home), "ingest", "--source", f"sql:sqlite:///{db}"]
    assert main(args) == 0
    wh = home / "warehouse"
    first = run_query(wh, "SELECT count(*) AS n FROM visits")["n"].iloc[0]
    held = run_query(wh, "SELECT count(DISTINCT row_ref) AS n FROM quarantine")["n"].iloc[0]
    with sqlite3.connect(db) as con:
        assert first + held == con.execute("SELECT count(*) FROM registrations").fetchone()[0]
    assert (home / "state" / "watermarks.json").exists()
    # nothing new: the incremental pull reads only the look-back window and adds nothing
    assert main(args) == 0
    batches = run_query(wh, "SELECT extracted, loaded, replaced FROM batches ORDER BY started")
    assert batches["extracted"].iloc[1] < batches["extracted"].iloc[0]
    assert run_query(wh, "SELECT count(*) AS n FROM visits")["n"].iloc[0] == first
    # a corrected HIS row comes through the watermark and replaces the earlier version
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE registrations SET chief_complaint = '更正：咳嗽3天', updated_at = '2026-01-01 00:00:00.000000' "
            "WHERE reg_id = (SELECT min(reg_id) FROM registrations)"
        )
    assert main(args) == 0
    assert run_query(wh, "SELECT count(*) AS n FROM visits")["n"].iloc[0] == first
    fixed = run_query(
        wh, "SELECT count(*) AS n FROM visits WHERE chief_complaint = '更正：咳嗽3天'"
    )
    assert fixed["n"].iloc[0] == 1
    assert run_query(wh, "SELECT replaced FROM batches ORDER BY started")["replaced"].iloc[-1] == 1


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d / "missing.csv", "lacks required columns"),
        (lambda d: d / "binary.csv", "neither UTF-8 nor GB18030"),
        (lambda d: "sql:sqlite:////nonexistent/dir/his.db", "cannot read"),
    ],
)
def test_rejected_batches_are_one_line_and_load_nothing(
    make: object,
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SENTINEL_HMAC_KEY", "s3cret")
    (tmp_path / "missing.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81\x30bad")
    target = make(tmp_path)  # type: ignore[operator]
    spec = target if isinstance(target, str) else f"linelist:{target}"
    home = tmp_path / "home"
    assert main(["--home", str(home), "ingest", "--source", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentinel: error:") and needle in err and len(err.splitlines()) == 1
    assert not (home / "warehouse" / "visits").exists()


def test_his_with_other_names_is_wired_by_settings(
    tmp_path: Path, his: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A HIS whose tables and columns have other names loads through the [his] mapping."""
    monkeypatch.setenv("SENTINEL_HMAC_KEY", "s3cret")
    db = tmp_path / "other.sqlite"
    db.write_bytes(his.read_bytes())
    with sqlite3.connect(db) as con:
        con.execute("ALTER TABLE registrations RENAME TO t_mz_ghdj")
        con.execute("ALTER TABLE t_mz_ghdj RENAME COLUMN reg_time TO ghrq")
        con.execute("ALTER TABLE t_mz_ghdj RENAME COLUMN chief_complaint TO zs")
        con.execute("ALTER TABLE patients RENAME COLUMN id_card_no TO sfzh")
        registrations = con.execute("SELECT count(*) FROM t_mz_ghdj").fetchone()[0]
    home = tmp_path / "home"
    home.mkdir()
    args = ["--home", str(home), "ingest", "--source", f"sql:sqlite:///{db}"]
    assert main(args) == 2  # the default names do not exist in this HIS
    assert "cannot read" in capsys.readouterr().err
    (home / "sentinel.toml").write_text(
        '[his]\ntables = { registrations = "t_mz_ghdj" }\n'
        'columns = { "registration.visit_time" = "ghrq", "registration.chief_complaint" = "zs",'
        ' "patient.id_number" = "sfzh" }\n',
        encoding="utf-8",
    )
    assert main(args) == 0
    wh = home / "warehouse"
    loaded = run_query(wh, "SELECT count(*) AS n FROM visits")["n"].iloc[0]
    held = run_query(wh, "SELECT count(DISTINCT row_ref) AS n FROM quarantine")["n"].iloc[0]
    assert loaded + held == registrations
    (home / "sentinel.toml").write_text(
        '[his]\ncolumns = { "registration.visit_tim" = "x" }\n', encoding="utf-8"
    )
    assert main(args) == 2
    assert "registration.visit_tim" in capsys.readouterr().err


def test_crash_before_watermark_is_resumed_without_duplicates(
    tmp_path: Path, his: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after loading but before the watermark moves: the re-run repeats the pull harmlessly."""
    from extract.watermark import WatermarkStore

    monkeypatch.setenv("SENTINEL_HMAC_KEY", "s3cret")
    home = tmp_path / "home"
    args = ["--home", str(home), "ingest", "--source", f"sql:sqlite:///{his}"]

    def crash(self: WatermarkStore, source_id: str, watermark: object) -> None:
        raise SystemExit("killed")  # the process dies here

    with monkeypatch.context() as m:
        m.setattr(WatermarkStore, "set", crash)
        with pytest.raises(SystemExit):
            main(args)
    wh = home / "warehouse"
    after_crash = run_query(wh, "SELECT count(*) AS n FROM visits")["n"].iloc[0]
    assert not (home / "state" / "watermarks.json").exists()
    assert main(args) == 0  # the full pull again
    assert run_query(wh, "SELECT count(*) AS n, count(DISTINCT visit_key) AS k FROM visits").iloc[
        0
    ].tolist() == [
        after_crash,
        after_crash,
    ]
    assert (home / "state" / "watermarks.json").exists()


def test_hl7_update_arriving_later_replaces_the_visit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An A08 in a later file replaces the visit its A04 loaded the day before."""
    monkeypatch.setenv("SENTINEL_HMAC_KEY", "s3cret")
    src = tmp_path / "src"
    simulate(SimulationOptions(out=src, days=4, start=date(2025, 9, 1), seed=4, formats=("hl7",)))
    files = sorted((src / "hl7").glob("adt_*.hl7"))
    home = tmp_path / "home"
    for f in files:
        assert main(["--home", str(home), "ingest", "--source", f"hl7:{f}"]) == 0
    batches = run_query(home / "warehouse", "SELECT replaced, loaded FROM batches ORDER BY started")
    assert batches["replaced"].iloc[1:].sum() > 0  # later files carried updates of earlier visits
    all_at_once = tmp_path / "once"
    assert main(["--home", str(all_at_once), "ingest", "--source", f"hl7:{src / 'hl7'}"]) == 0
    cols = "visit_key, chief_complaint, diagnosis_codes, temperature_c, updated_at"
    one = run_query(home / "warehouse", f"SELECT {cols} FROM visits ORDER BY visit_key")
    other = run_query(all_at_once / "warehouse", f"SELECT {cols} FROM visits ORDER BY visit_key")
    assert one.equals(other)  # file by file ends where one big batch ends
