"""Loading rejects broken area-set files with a message naming the file and the problem."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import geo.areas
from geo.areas import load_area_set

SHIPPED = Path(geo.areas.__file__).resolve().parent / "data" / "changning"


@pytest.fixture
def copy_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the Changning files, loadable as area set ``copy``."""
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("streets.geojson", "population.csv", "facilities.csv", "gazetteer.csv"):
        shutil.copy(SHIPPED / name, folder / name)
    monkeypatch.setattr(geo.areas, "DATA_DIR", tmp_path)
    return folder


def _edit_streets(folder: Path, change: Callable[[list[dict]], None]) -> None:
    path = folder / "streets.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data["features"])
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_copy_loads(copy_set: Path) -> None:
    assert len(load_area_set("copy").codes) == 10


def test_unknown_area_set_is_clear() -> None:
    with pytest.raises(ValueError, match="unknown area set 'atlantis'; shipped: changning"):
        load_area_set("atlantis")


def test_missing_file(copy_set: Path) -> None:
    (copy_set / "gazetteer.csv").unlink()
    with pytest.raises(ValueError, match=r"gazetteer\.csv: file not found"):
        load_area_set("copy")


def test_duplicate_code(copy_set: Path) -> None:
    def dup(features: list[dict]) -> None:
        features[1]["properties"]["street_code"] = features[0]["properties"]["street_code"]

    _edit_streets(copy_set, dup)
    with pytest.raises(ValueError, match=r"streets\.geojson: duplicate street_code: 310105001000"):
        load_area_set("copy")


def test_short_code(copy_set: Path) -> None:
    def short(features: list[dict]) -> None:
        features[0]["properties"]["street_code"] = "31010500100"

    _edit_streets(copy_set, short)
    with pytest.raises(
        ValueError, match=r"streets\.geojson: street_code must be a 12-digit string"
    ):
        load_area_set("copy")


def test_invalid_geometry(copy_set: Path) -> None:
    def bowtie(features: list[dict]) -> None:
        features[0]["geometry"] = {
            "type": "Polygon",
            "coordinates": [
                [
                    [121.41, 31.21],
                    [121.42, 31.22],
                    [121.42, 31.21],
                    [121.41, 31.22],
                    [121.41, 31.21],
                ]
            ],
        }

    _edit_streets(copy_set, bowtie)
    with pytest.raises(
        ValueError, match=r"streets\.geojson: invalid geometry: 310105001000 \(Self-intersection"
    ):
        load_area_set("copy")


def test_overlapping_streets(copy_set: Path) -> None:
    def overlap(features: list[dict]) -> None:
        features[1]["geometry"] = features[0]["geometry"]

    _edit_streets(copy_set, overlap)
    with pytest.raises(ValueError, match="streets overlap: 310105001000/310105002000"):
        load_area_set("copy")


def test_population_not_positive(copy_set: Path) -> None:
    _edit_streets(copy_set, lambda f: f[2]["properties"].update(population=0))
    with pytest.raises(
        ValueError, match=r"streets\.geojson: population must be positive: 310105004000"
    ):
        load_area_set("copy")


def test_age_groups_must_add_up(copy_set: Path) -> None:
    _edit_text(copy_set / "population.csv", "310105002000,60+,", "310105002000,60+,1")
    with pytest.raises(
        ValueError,
        match=r"population\.csv: age groups do not sum to the street population: 310105002000",
    ):
        load_area_set("copy")


def test_age_group_vocabulary(copy_set: Path) -> None:
    _edit_text(copy_set / "population.csv", "310105002000,60+,", "310105002000,65+,")
    with pytest.raises(ValueError, match=r"population\.csv: age_group must be one of .*: 65\+"):
        load_area_set("copy")


def test_facility_outside_its_street(copy_set: Path) -> None:
    _edit_text(copy_set / "facilities.csv", "general,310105001000,", "general,310105102000,")
    with pytest.raises(
        ValueError, match=r"facilities\.csv: facility outside its street polygon: F01"
    ):
        load_area_set("copy")


def test_facility_unknown_street_and_level(copy_set: Path) -> None:
    _edit_text(copy_set / "facilities.csv", "tertiary,general,", "clinic,general,")
    with pytest.raises(ValueError, match=r"facilities\.csv: level must be one of .*: F01"):
        load_area_set("copy")


def test_gazetteer_split_road_needs_ranges(copy_set: Path) -> None:
    _edit_text(copy_set / "gazetteer.csv", "长宁路,600,1199", "长宁路,,")
    with pytest.raises(
        ValueError,
        match=r"gazetteer\.csv: road crossing streets needs house-number ranges.*: 长宁路",
    ):
        load_area_set("copy")


def test_gazetteer_overlapping_ranges(copy_set: Path) -> None:
    _edit_text(copy_set / "gazetteer.csv", "长宁路,600,1199", "长宁路,600,1299")
    with pytest.raises(
        ValueError, match=r"gazetteer\.csv: house-number ranges of a road overlap: 长宁路"
    ):
        load_area_set("copy")


def test_gazetteer_compound_in_two_streets(copy_set: Path) -> None:
    _edit_text(copy_set / "gazetteer.csv", "compound,中一村", "compound,华阳小区")
    with pytest.raises(
        ValueError,
        match=r"gazetteer\.csv: street or compound name listed for several streets: 华阳小区",
    ):
        load_area_set("copy")
