"""`sentinel geo load`: register an area set from a boundary file, then work in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo.areas import load_area_set
from sentinel.cli import main

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "geo"
FIELDS = ["--code-field", "code", "--name-field", "name", "--population-field", "pop"]


def test_register_and_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    args = ["--home", str(home), "geo", "load", str(ASSETS / "changning.geojson"), "--name", "cn2"]
    assert main([*args, *FIELDS, "--name-en-field", "name_en"]) == 0
    assert "registered" in capsys.readouterr().err
    area = load_area_set("cn2", home=home)
    assert area.codes == load_area_set().codes
    assert int(area.streets["population"].sum()) == int(load_area_set().streets["population"].sum())
    # registering the same name again needs --force
    assert main([*args, *FIELDS]) == 2
    assert main([*args, *FIELDS, "--force"]) == 0


@pytest.mark.parametrize(
    ("file", "needle"),
    [("duplicate_codes.geojson", "duplicate"), ("bad_population.geojson", "population"),
     ("missing.geojson", "does not exist")],
)  # fmt: skip
def test_bad_boundary_files_are_exit_2(
    file: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    code = main(["--home", str(home), "geo", "load", str(ASSETS / file), "--name", "x", *FIELDS])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err.lower(), err
    assert not (home / "geo" / "x").exists()
