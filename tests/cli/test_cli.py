"""The command-line contract: --help everywhere, exit 2 with one line on bad usage, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.cli import main

COMMANDS = [
    "simulate",
    "demo",
    "ingest",
    "classify",
    "detect",
    "evaluate",
    "scan",
    "report",
    "stats",
    "alerts",
    "geo",
    "sql",
]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - the exit code is what we test
        [sys.executable, "-m", "sentinel", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Usage" in out
    if command:
        assert command in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["simulate", "--out", "{tmp}/o", "--start", "2025-02-30"], "not a valid date"),
        (["simulate", "--out", "{tmp}/o", "--days", "0"], "--days"),
        (["simulate", "--out", "{tmp}/o", "--scale", "planet"], "--scale"),
        (["simulate", "--out", "{tmp}/o", "--formats", "his,pdf"], "--formats"),
        (["simulate", "--out", "{tmp}/o", "--bogus"], "No such option"),
        (["simulate", "--out", "{tmp}/o", "--days", "ten"], "--days"),
        (["simulate"], "--out"),
        (["frobnicate"], "No such command"),
        (["sql", "SELECT 1", "--format", "xml"], "--format"),
    ],
)
def test_bad_usage_is_one_line_exit_2_and_writes_nothing(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    code = main(["--home", str(home), *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sentinel: error:") and needle in err
    assert not (tmp_path / "o").exists()
    assert not home.exists()


def test_unwritable_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # /proc refuses new folders even to root, unlike a chmod-ed folder
    code = main(
        ["--home", str(tmp_path / "h"), "simulate", "--out", "/proc/sentinel-out", "--days", "2"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "not writable" in err and len(err.strip().splitlines()) == 1
    assert not Path("/proc/sentinel-out").exists()


def test_output_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    assert main(["simulate", "--out", str(target), "--days", "2"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and len(err.strip().splitlines()) == 1
    assert target.read_text() == "x"


def test_sql_without_warehouse_is_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path / "nothing"), "sql", "SELECT 1"]) == 2
    assert "no warehouse" in capsys.readouterr().err


def test_module_entry_point_exit_code(tmp_path: Path) -> None:
    proc = run(["simulate", "--out", str(tmp_path / "o"), "--start", "yesterday"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "Traceback" not in proc.stderr


def test_classify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "visit_id,chief_complaint,temperature_c,age_years,diagnosis_codes\n"
        "v1,发热伴咳嗽2天，无腹泻,38.6,30,\n"
        "v2,咳嗽3天，无发热,36.8,40,\n"
        "v3,右踝扭伤,,25,S93.4\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    assert main(["classify", "--input", str(src), "--output", str(out)]) == 0
    assert "classified 3 visits" in capsys.readouterr().err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith(",syndromes") and lines[0].startswith("visit_id,")
    assert lines[1].endswith(",fever;ili;respiratory")
    assert lines[2].endswith(",respiratory")
    assert lines[3].endswith(",")
    bad = tmp_path / "bad.csv"
    bad.write_text("visit_id,text\n1,x\n", encoding="utf-8")
    assert main(["classify", "--input", str(bad), "--output", str(tmp_path / "o2.csv")]) == 2
    err = capsys.readouterr().err
    assert "chief_complaint" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o2.csv").exists()
