"""The simulated HL7 v2.5.1 ADT feed: layout, field round trips, determinism."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import hl7
import pandas as pd
import pyarrow as pa
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from sentinel.simulator.hl7v2 import (
    Hl7FileWriter,
    escape_text,
    explode_diagnoses,
    split_chinese_name,
    split_diagnoses,
    split_names,
)
from sentinel.simulator.records import VISIT_COLUMNS, DayBatch


def write_all(out: Path, batches: list[DayBatch]) -> list[int]:
    with Hl7FileWriter(out) as writer:
        return [writer.write(b) for b in batches]


def ts(value: pd.Timestamp) -> str:
    return f"{value:%Y%m%d%H%M%S}+0800"


def field(message: hl7.Message, segment: str, number: int) -> str:
    """The whole field ``segment-number`` (accessors like ``MSH.F9`` give component 1)."""
    return str(message.segment(segment)[number])


def text(value: object) -> str:
    return "" if pd.isna(value) else str(value)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, rows: pd.DataFrame, to_batches: Any) -> Path:
    out = tmp_path_factory.mktemp("hl7")
    assert write_all(out, to_batches(rows)) == [8, 5]
    return out


@pytest.fixture(scope="module")
def messages(written: Path) -> list[hl7.Message]:
    parsed = []
    for path in sorted(written.glob("adt_*.hl7")):
        raw = path.read_bytes().decode("utf-8")
        parsed.extend(hl7.parse(m) for m in hl7.split_file(raw))
    return parsed


def test_one_batch_file_per_arrival_day_with_envelope(written: Path) -> None:
    assert sorted(p.name for p in written.iterdir()) == ["adt_20260105.hl7", "adt_20260106.hl7"]
    raw = (written / "adt_20260106.hl7").read_bytes().decode("utf-8")
    assert "\n" not in raw
    segments = raw.split("\r")
    assert segments[-1] == ""  # every segment, the last included, ends with \r
    segments = segments[:-1]
    assert segments[0].startswith("FHS|^~\\&|") and "adt_20260106.hl7" in segments[0]
    assert segments[1].startswith("BHS|^~\\&|")
    assert segments[-2:] == ["BTS|5", "FTS|1"]
    assert sum(s.startswith("MSH|") for s in segments) == 5
    assert {s[:3] for s in segments[2:-2]} <= {"MSH", "EVN", "PID", "PV1", "PV2", "OBX", "DG1"}


def test_message_types_and_unique_control_ids(messages: list[hl7.Message]) -> None:
    types = [field(m, "MSH", 9) for m in messages]
    assert types.count("ADT^A04^ADT_A01") == 11
    assert types.count("ADT^A08^ADT_A01") == 2
    ids = [field(m, "MSH", 10) for m in messages]
    assert len(set(ids)) == len(ids) == 13
    for m in messages:
        assert field(m, "MSH", 12) == "2.5.1"
        assert field(m, "MSH", 18) == "UNICODE UTF-8"


def test_messages_follow_message_time_within_a_file(written: Path) -> None:
    raw = (written / "adt_20260106.hl7").read_bytes().decode("utf-8")
    times = [field(hl7.parse(m), "MSH", 7) for m in hl7.split_file(raw)]
    assert times == sorted(times)
    # the same-day correction follows its registration
    events = [str(hl7.parse(m)["MSH.F9.R1.C2"]) for m in hl7.split_file(raw)]
    assert events[-2:] == ["A04", "A08"]


def test_fields_round_trip(messages: list[hl7.Message], rows: pd.DataFrame) -> None:
    assert len(messages) == len(rows)
    for m in messages:
        event = str(m["MSH.F9.R1.C2"])
        vid = field(m, "PV1", 19)
        kind = "visit" if event == "A04" else "correction"
        (row,) = rows[(rows["visit_id"] == vid) & (rows["kind"] == kind)].itertuples()
        version = row.created_at if event == "A04" else row.updated_at
        assert field(m, "MSH", 7) == ts(version) == field(m, "EVN", 2)
        assert field(m, "MSH", 4) == f"{row.facility_id}^{row.facility_id}^L"

        pid = m.segment("PID")
        assert m["PID.F3.R1.C1"] == row.patient_id
        assert m["PID.F3.R1.C4"] == row.facility_id
        assert m["PID.F3.R1.C5"] == "MR"
        if text(row.id_number):
            assert m["PID.F3.R2.C1"] == row.id_number
            assert m["PID.F3.R2.C4"] == "CHN"
            assert m["PID.F3.R2.C5"] == "NNCHN"
        else:
            assert len(pid[3]) == 1
        family, given = m["PID.F5.R1.C1"], m["PID.F5.R1.C2"]
        assert family + given == row.name
        assert field(m, "PID", 7) == f"{row.birth_date:%Y%m%d}"
        assert field(m, "PID", 8) == row.sex
        street = text(row.residence_code)
        if text(row.address) or street:
            assert m["PID.F11.R1.C1"] == text(row.address)
            assert m["PID.F11.R1.C3"] == m["PID.F11.R1.C4"] == "上海市"
            assert m["PID.F11.R1.C5"] == (street[:6] or "310105")
            assert m["PID.F11.R1.C6"] == "CHN"
            assert m["PID.F11.R1.C7"] == "H"
            assert m["PID.F11.R1.C9"] == street
        else:
            assert field(m, "PID", 11) == ""
        if text(row.phone):
            assert m["PID.F13.R1.C2"] == "PRN"
            assert m["PID.F13.R1.C3"] == "CP"
            assert m["PID.F13.R1.C12"] == row.phone
        else:
            assert len(pid) <= 13 or str(pid[13]) == ""

        assert field(m, "PV1", 2) == {"outpatient": "O", "emergency": "E"}[row.setting]
        assert field(m, "PV1", 3) == f"{row.dept}^^^{row.facility_id}"
        assert field(m, "PV1", 44) == ts(row.visit_time)

        complaint = text(row.chief_complaint).rstrip()
        if complaint:
            assert m["PV2.F3.R1.C2"] == complaint
        else:
            assert "\rPV2|" not in str(m)

        if math.isnan(row.temperature_c):
            assert "\rOBX|" not in str(m)
        else:
            assert field(m, "OBX", 3) == "8310-5^Body temperature^LN"
            assert field(m, "OBX", 5) == f"{row.temperature_c:.1f}"
            assert field(m, "OBX", 6) == "Cel^degree Celsius^UCUM"
            assert field(m, "OBX", 11) == "F"
            assert field(m, "OBX", 14) == ts(row.visit_time)

        codes = [c for c in text(row.diagnosis_codes).split(";") if c]
        names = [c for c in text(row.diagnosis_names).split(";") if c]
        dg1 = m.segments("DG1") if codes else []
        assert [str(s[1]) for s in dg1] == [str(n) for n in range(1, len(codes) + 1)]
        assert [str(s[3][0][0]) for s in dg1] == codes
        assert [m.unescape(str(s[3][0][1])) for s in dg1] == names
        assert all(str(s[3][0][2]) == "I10" and str(s[6]) == "W" for s in dg1)
        if not codes:
            assert "\rDG1|" not in str(m)


def test_delimiters_and_line_breaks_are_escaped(written: Path) -> None:
    raw = (written / "adt_20260105.hl7").read_bytes().decode("utf-8")
    assert "发热3天\\F\\咳嗽\\S\\咽痛" in raw
    assert "腹泻\\T\\腹痛\\R\\3次\\E\\天" in raw
    assert "头痛\\X0A\\呕吐2次" in raw
    assert "胸闷、气促\\X0D\\\\X0A\\伴发热" in raw
    assert "急性上呼吸道感染\\S\\未特指" in raw
    for missing in ("nan", "None", "NaT", "<NA>"):
        assert missing not in raw


def test_compound_surnames_are_family_names(messages: list[hl7.Message]) -> None:
    names = {(str(m["PID.F5.R1.C1"]), str(m["PID.F5.R1.C2"])) for m in messages}
    assert {
        ("欧阳", "明轩"),
        ("司马", "懿"),
        ("诸葛", "亮"),
        ("上官", "婉儿"),
        ("王", "伟"),
    } <= names
    assert ("", "买买提·艾力") in names
    assert split_chinese_name("慕容复") == ("慕容", "复")
    assert split_chinese_name("夏侯惇") == ("夏侯", "惇")


def test_messages_validate_as_hl7apy_adt_a01(messages: list[hl7.Message]) -> None:
    for m in messages:
        parsed = parse_message(str(m), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        assert parsed.name == "ADT_A01"
        assert [c.name for c in parsed.children][:4] == ["MSH", "EVN", "PID", "PV1"]


def test_same_batches_give_identical_bytes(
    tmp_path: Path, rows: pd.DataFrame, to_batches: Any
) -> None:
    write_all(tmp_path / "a", to_batches(rows))
    # row order inside a batch does not matter either
    write_all(tmp_path / "b", to_batches(rows.iloc[::-1].reset_index(drop=True)))
    for name in ("adt_20260105.hl7", "adt_20260106.hl7"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_empty_day_writes_an_empty_batch(tmp_path: Path, rows: pd.DataFrame) -> None:
    empty = rows.iloc[:0][list(VISIT_COLUMNS)]
    with Hl7FileWriter(tmp_path) as writer:
        assert writer.write(DayBatch(date(2026, 1, 7), empty, empty)) == 0
    raw = (tmp_path / "adt_20260107.hl7").read_bytes().decode("utf-8")
    assert raw.endswith("BTS|0\rFTS|1\r")
    assert hl7.split_file(raw) == []


def test_days_must_advance(tmp_path: Path, rows: pd.DataFrame, to_batches: Any) -> None:
    first = to_batches(rows)[0]
    writer = Hl7FileWriter(tmp_path)
    writer.write(first)
    with pytest.raises(ValueError, match="does not follow"):
        writer.write(first)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(first)


def test_escape_text_round_trips_through_hl7_unescape() -> None:
    text = "a|b^c~d\\e&f\rg\nh\ti\x00j\x7fk中文"
    message = hl7.parse(
        f"MSH|^~\\&|A|B|C|D|20260101||ADT^A04^ADT_A01|1|P|2.5.1\rPV2|||^{escape_text(text)}\r"
    )
    assert message["PV2.F3.R1.C2"] == text


def test_column_name_split_matches_scalar_split() -> None:
    names = ["王伟", "欧阳明轩", "欧阳", "司马懿", "买买提·艾力", " 李娜 ", "张", "", None]
    family, given = split_names(pa.array(names, type=pa.large_string()))
    got = list(zip(family.to_pylist(), given.to_pylist(), strict=True))
    expected = [split_chinese_name(n or "") for n in names]
    assert [(f or "", g or "") for f, g in got] == expected


@pytest.mark.parametrize(
    ("codes", "names"),
    [
        (["J06.9;I10", None, "A09.9", "J11.1;R50.9"], ["上感;高血压", None, "胃肠炎", "流感;发热"]),
        (["J06.9; I10", " A09.9 ;;K52.9", "J11.1;R50.9", None], ["上感", "胃肠炎;;", None, None]),
        ([None, None], [None, None]),
    ],
)
def test_column_diagnoses_match_scalar_split(
    codes: list[str | None], names: list[str | None]
) -> None:
    rows, numbers, found, labels = explode_diagnoses(
        pa.array(codes, type=pa.large_string()), pa.array(names, type=pa.large_string())
    )
    got = list(
        zip(
            rows.to_pylist(),
            numbers.to_pylist(),
            found.to_pylist(),
            labels.to_pylist(),
            strict=True,
        )
    )
    expected = [
        (i, str(n), code, label or None)
        for i, (c, d) in enumerate(zip(codes, names, strict=True))
        for n, (code, label) in enumerate(split_diagnoses(c or "", d or ""), 1)
    ]
    assert got == expected


def test_missing_required_values_and_unknown_settings_are_refused(
    tmp_path: Path, rows: pd.DataFrame, to_batches: Any
) -> None:
    first = to_batches(rows)[0]
    broken = first.visits.assign(
        patient_id=first.visits["patient_id"].where(lambda s: s != "F01000000101")
    )
    with pytest.raises(ValueError, match="patient_id"):
        Hl7FileWriter(tmp_path / "a").write(DayBatch(first.day, broken, first.corrections))
    odd = first.visits.assign(setting="inpatient-ward")
    with pytest.raises(ValueError, match="inpatient-ward"):
        Hl7FileWriter(tmp_path / "b").write(DayBatch(first.day, odd, first.corrections))
