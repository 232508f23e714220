"""`sentinel demo` end to end on embedded defaults, then `sentinel sql` on what it loaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sentinel.cli import main


def test_demo_then_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    assert main(["--home", str(home), "demo", "--days", "45"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert "Where things are" in out and str(home / "warehouse") in flat
    assert "Detection for 2025-01-15 … 2025-02-14" in flat and "injected outbreaks" in out
    assert "Space-time scan for" in out and "Bulletin for 2025-02-14" in flat
    assert (home / "reports" / "2025-02-14" / "bulletin.pdf").is_file()
    # the simulation ends with an outbreak under way, and the last day's bulletin shows it
    assert re.search(
        r"Injected outbreak OB\d{3} \(gastrointestinal, under way on 2025-02-14\): in the bulletin",
        flat,
    )
    assert (
        main(
            [
                "--home",
                str(home),
                "sql",
                "SELECT count(*) AS n, count(DISTINCT street_code) AS streets FROM visits",
                "--format",
                "json",
            ]
        )
        == 0
    )
    row = json.loads(capsys.readouterr().out.strip())
    assert row["n"] > 20 * 1000 and row["streets"] == 10
    assert (
        main(
            [
                "--home",
                str(home),
                "sql",
                "SELECT street_code FROM streets ORDER BY 1",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    csv = capsys.readouterr().out.splitlines()
    assert csv[0] == "street_code" and len(csv) == 11
    # a write through `sentinel sql` is refused with one line
    assert main(["--home", str(home), "sql", "DELETE FROM visits"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentinel: error:") and "read-only" in err and len(err.splitlines()) == 1

    # running the demo again leaves the same warehouse
    def files() -> dict[Path, bytes]:
        return {
            p: p.read_bytes()
            for table in ("visits", "syndrome_daily", "syndrome_age_daily", "alerts")
            for p in (home / "warehouse" / table).rglob("*.parquet")
        }

    before = files()
    assert any("alerts" in str(p) for p in before)
    assert main(["--home", str(home), "demo", "--days", "45"]) == 0
    assert files() == before


def test_sql_shell_is_read_only_duckdb(tmp_path: Path) -> None:
    """Without a query, `sentinel sql` becomes the DuckDB shell on the catalog, read-only."""
    import subprocess
    import sys

    home = tmp_path / "home"
    assert main(["--home", str(home), "demo", "--days", "3"]) == 0
    script = "SELECT count(DISTINCT street_code) AS streets FROM visits;\nCREATE TABLE x (a INT);\n"
    proc = subprocess.run(
        [sys.executable, "-m", "sentinel", "--home", str(home), "sql"],
        input=script, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "10" in proc.stdout
    assert "read-only" in (proc.stdout + proc.stderr).lower()
