"""HL7 v2 ADT files → raw visit records: the simulator's feed, ordinary files, bad input."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import hl7
import pandas as pd
import pytest

from extract.errors import ParseError, SchemaError, SourceError, UnsupportedMessageError
from extract.his import extract_his_visits
from extract.hl7v2 import (
    Delimiters,
    escape_text,
    extract_hl7_visits,
    latest_versions,
    parse_message,
    records_frame,
    unescape,
)
from sentinel.simulator.run import SimulationOptions, simulate
from transform.records import RAW_COLUMNS

ASSETS = Path(__file__).parent / "assets"
HIS_SEX = {"1": "M", "2": "F"}  # GB/T 2261.1 codes, should the HIS extract pass them on
VISIT_FIELDS = (
    "facility_id", "setting", "visit_time", "chief_complaint", "diagnosis_codes",
    "temperature_c", "source_patient_id",
)  # fmt: skip
PATIENT_FIELDS = (
    "name", "id_number", "phone", "address", "sex", "birth_date", "residence_code",
)  # fmt: skip
ID_NUMBER = re.compile(r"\d{17}[\dX]")
MOBILE = re.compile(r"1[3-9]\d{9}")


def messages_of(path: Path) -> list[str]:
    """The messages of a ``\\r``-terminated file, split by the ``hl7`` library."""
    return list(hl7.split_file(path.read_bytes().decode("utf-8")))


def same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality where two missing values are equal."""
    return (a == b).fillna(False).astype(bool) | (a.isna() & b.isna())


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(SimulationOptions(out=out, days=5, formats=("his", "hl7")))
    return out


@pytest.fixture(scope="module")
def extracted(simulated: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    result = extract_hl7_visits(simulated / "hl7")
    his = extract_his_visits(f"sqlite:///{simulated / 'his.sqlite'}")
    return result.visits, result.rejected, his


# ---------------------------------------------------------------------------------------
# the simulator's feed against its HIS database


def test_simulated_files_parse_without_rejections(simulated: Path) -> None:
    result = extract_hl7_visits(simulated / "hl7")
    assert result.rejected.empty
    assert list(result.visits.columns) == list(RAW_COLUMNS)
    assert list(result.files["file"]) == sorted(p.name for p in (simulated / "hl7").glob("*.hl7"))
    assert (result.files["encoding"] == "utf-8").all()
    assert (result.files["declared_messages"] == result.files["messages"]).all()
    assert (result.files["problem"] == "").all()
    assert result.extracted == len(result.visits) == result.files["messages"].sum()
    assert (result.visits["source"] == "hl7").all()
    assert result.visits["row_ref"].is_unique
    assert result.visits["row_ref"].str.fullmatch(r"adt_\d{8}\.hl7#msg\d+").all()


def test_latest_versions_match_his_visits(
    extracted: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    visits, _, his = extracted
    latest = latest_versions(visits)
    assert latest["source_visit_id"].is_unique
    assert set(latest["source_visit_id"]) == set(his["source_visit_id"])
    assert len(visits) > len(latest)  # corrections (A08) are versions of a visit
    both = latest.merge(his, on="source_visit_id", suffixes=("", "_his"))
    both["visit_time_his"] = both["visit_time_his"].dt.floor("s")
    for col in VISIT_FIELDS:
        differs = ~same(both[col], both[f"{col}_his"])
        assert not differs.any(), f"{col}: {int(differs.sum())} visits differ"


def test_identity_fields_match_the_his_patient(
    extracted: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    # HIS keeps a patient's first record (one row per patient id); HL7 carries the state
    # of each message, so compare with each patient's first message
    visits, _, his = extracted
    first = visits.drop_duplicates("source_patient_id").set_index("source_patient_id")
    patients = his.drop_duplicates("source_patient_id").set_index("source_patient_id")
    patients["sex"] = patients["sex"].replace(HIS_SEX)
    assert set(first.index) == set(patients.index)
    first = first.loc[patients.index]
    for col in PATIENT_FIELDS:
        differs = ~same(first[col], patients[col])
        assert not differs.any(), f"{col}: {int(differs.sum())} patients differ"
    assert first["name"].notna().all() and first["residence_code"].notna().any()


def test_parse_message_agrees_with_the_hl7_library(simulated: Path) -> None:
    path = sorted((simulated / "hl7").glob("*.hl7"))[-1]
    for number, text in enumerate(messages_of(path)[:400], 1):
        record = parse_message(text, f"{path.name}#msg{number}")
        msg = hl7.parse(text)
        assert record["source_visit_id"] == str(msg.segment("PV1")[19])
        assert record["facility_id"] == str(msg.segment("PV1")[3][0][3])
        pid3 = msg.segment("PID")[3]
        assert record["source_patient_id"] == str(pid3[0][0])
        if len(pid3) > 1:
            assert record["id_number"] == str(pid3[1][0])
        codes = [str(s[3][0][0]) for s in msg.segments("DG1")] if "DG1" in text else []
        assert record["diagnosis_codes"] == ";".join(codes)
        if "\rPV2|" in text:
            complaint = msg.unescape(str(msg.segment("PV2")[3][0][1]))
            assert record["chief_complaint"] == complaint.strip()


# ---------------------------------------------------------------------------------------
# an ordinary file: \r\n, no envelope, escapes, offsets, °F, Latin names, A01/A03


def test_ordinary_file_values() -> None:
    result = extract_hl7_visits(ASSETS / "ordinary.hl7")
    assert result.rejected.empty
    v = result.visits.set_index("row_ref")
    first = v.loc["ordinary.hl7#msg1"]
    assert first["name"] == "欧阳明轩"
    assert first["chief_complaint"] == "腹泻&腹痛~3次\\天\n伴发热"
    assert first["diagnosis_codes"] == "A09.9;R50.9"
    assert first["residence_code"] == "310105001000"
    assert first["address"] == "上海市长宁区华阳路112弄3号"
    assert first["id_number"] == "31010519800315001X"
    assert first["source_patient_id"] == "F01000000101"
    assert first["phone"] == "13812345678"
    assert (first["sex"], first["birth_date"]) == ("M", pd.Timestamp("1980-03-15"))
    assert first["visit_time"] == pd.Timestamp("2025-01-05 08:15:00")
    correction = v.loc["ordinary.hl7#msg2"]
    assert correction["updated_at"] == pd.Timestamp("2025-01-05 15:30:00")  # from -0500
    assert correction["temperature_c"] == pytest.approx(38.5)  # 101.3 [degF]
    admitted = v.loc["ordinary.hl7#msg3"]
    assert admitted["name"] == "John Q Smith"
    assert admitted["setting"] == "inpatient"
    assert admitted["chief_complaint"] == "chest pain|short of breath"  # PV2-3.1 only
    assert pd.isna(admitted["temperature_c"]) and admitted["diagnosis_codes"] == ""
    assert admitted["visit_time"] == pd.Timestamp("2025-01-05 10:00:00")
    latest = latest_versions(result.visits).set_index("source_visit_id")
    assert latest.loc["F02-20250105-00007", "row_ref"] == "ordinary.hl7#msg4"  # A03
    assert latest.loc["F01-20250105-00001", "row_ref"] == "ordinary.hl7#msg2"  # A08


def test_gb18030_file_is_decoded_and_reported() -> None:
    result = extract_hl7_visits(ASSETS / "gb18030.hl7")
    assert result.rejected.empty
    assert list(result.files["encoding"]) == ["gb18030"]
    assert list(result.visits["name"]) == ["䶮晗", "王伟"]
    assert result.visits["chief_complaint"].eq("发热3天，咳嗽").all()


# ---------------------------------------------------------------------------------------
# malformed input: a rejection with a reason, never a traceback; good messages still read

MALFORMED = [
    ("truncated.hl7", {"msg2": "truncated message"}, 1),
    ("wrong_delimiters.hl7", {"msg2": "wrong delimiters", "msg3": "bad encoding characters"}, 2),
    ("non_adt.hl7", {"msg2": "not an ADT message", "msg3": "unsupported trigger event 'A02'"}, 2),
    ("bad_timestamp.hl7", {"msg2": "bad timestamp in PV1-44", "msg3": "bad timestamp in MSH-7"}, 2),
    ("missing_visit_number.hl7", {"msg2": "missing PV1-19 visit number"}, 2),
    ("invalid_utf8.hl7", {"msg2": "undecodable bytes: neither UTF-8 nor GB18030"}, 2),
    ("not_hl7.hl7", {"seg1": "no MSH segment"}, 1),
]


@pytest.mark.parametrize(("name", "reasons", "good"), MALFORMED)
def test_malformed_input_is_rejected_with_a_reason(
    name: str, reasons: dict[str, str], good: int
) -> None:
    result = extract_hl7_visits(ASSETS / name)
    got = dict(zip(result.rejected["row_ref"], result.rejected["reason"], strict=True))
    assert set(got) == {f"{name}#{ref}" for ref in reasons}
    for ref, words in reasons.items():
        assert words in got[f"{name}#{ref}"]
    assert len(result.visits) == good
    assert result.visits["source_visit_id"].notna().all()
    assert result.extracted == len(result.visits) + len(result.rejected)


def test_truncated_file_is_flagged() -> None:
    result = extract_hl7_visits(ASSETS / "truncated.hl7")
    assert "truncated" in result.files["problem"].iloc[0]


def test_reasons_carry_no_identifiers(tmp_path: Path) -> None:
    folder = tmp_path / "all"
    shutil.copytree(ASSETS, folder, ignore=shutil.ignore_patterns("*.py", "fhir", "linelist"))
    result = extract_hl7_visits(folder)
    assert len(result.rejected) == sum(len(r) for _, r, _ in MALFORMED)
    for reason in result.rejected["reason"]:
        assert not ID_NUMBER.search(reason) and not MOBILE.search(reason)
        assert not re.search(r"[王伟欧阳明轩华阳路]", reason)


def test_folder_reads_hl7_files_in_name_order(tmp_path: Path) -> None:
    for name in ("b.hl7", "a.hl7"):
        shutil.copy(ASSETS / "ordinary.hl7", tmp_path / name)
    (tmp_path / "notes.txt").write_text("not read", encoding="utf-8")
    result = extract_hl7_visits(tmp_path)
    assert list(result.files["file"]) == ["a.hl7", "b.hl7"]
    assert result.visits["row_ref"].iloc[0] == "a.hl7#msg1"
    assert len(result.visits) == 8


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such HL7 file"):
        extract_hl7_visits(tmp_path / "absent")


# ---------------------------------------------------------------------------------------
# parse_message


def good_message() -> str:
    return messages_of(ASSETS / "missing_visit_number.hl7")[0]


def test_parse_message_returns_one_raw_record() -> None:
    record = parse_message(good_message().replace("\r", "\n"), "feed#1", source="adt")
    assert list(record) == list(RAW_COLUMNS)
    assert record["source"] == "adt" and record["row_ref"] == "feed#1"
    assert record["visit_time"] == datetime(2025, 1, 5, 8, 15)
    assert record["updated_at"] == datetime(2025, 1, 5, 8, 30)
    assert record["birth_date"] == datetime(1980, 3, 15)
    assert record["temperature_c"] == 38.5


@pytest.mark.parametrize(
    ("old", "new", "error", "words"),
    [
        ("MSH|", "XXX|", UnsupportedMessageError, "not an HL7 message"),
        ("|2.5.1|", "|3.0|", UnsupportedMessageError, "unsupported HL7 version '3.0'"),
        ("ADT^A04^ADT_A01", "ADT^A31^ADT_A05", UnsupportedMessageError, "'A31'"),
        ("\rPV1|", "\rZV1|", ParseError, "missing PV1 segment"),
        ("\rPID|", "\rZID|", ParseError, "missing PID segment"),
        ("PV1|1|O|", "PV1|1|Q|", ParseError, "patient class 'Q'"),
        ("|19800315|", "|19800230|", ParseError, "bad timestamp in PID-7"),
        ("|38.5|Cel", "|38,5|Cel", ParseError, "temperature is not a number"),
        ("|38.5|Cel", "|38.5|K", ParseError, "temperature unit 'K'"),
        ("^发热3天", "^发热\\Q\\3天", ParseError, "unsupported escape sequence in PV2-3.2"),
        ("^发热3天", "^发热\\F3天", ParseError, "unterminated escape sequence"),
    ],
)
def test_parse_message_errors_are_precise(
    old: str, new: str, error: type[ParseError], words: str
) -> None:
    text = good_message()
    assert old in text
    with pytest.raises(error) as caught:
        parse_message(text.replace(old, new, 1), "feed#7")
    assert type(caught.value) is error
    assert words in caught.value.reason
    assert caught.value.row_ref == "feed#7"
    assert str(caught.value).startswith("feed#7: ")


def test_records_of_parse_message_make_a_raw_frame() -> None:
    records = [parse_message(good_message(), f"feed#{i}") for i in range(3)]
    frame = records_frame(records)
    assert list(frame.columns) == list(RAW_COLUMNS) and len(frame) == 3
    assert str(frame["visit_time"].dtype) == "datetime64[us]"
    assert frame["row_ref"].tolist() == ["feed#0", "feed#1", "feed#2"]


def test_visit_time_falls_back_to_evn2_and_facility_to_msh4() -> None:
    text = good_message().replace("20250105081500+0800", "").replace("FEV^^^F01", "FEV")
    record = parse_message(text, "x")
    assert record["visit_time"] == datetime(2025, 1, 5, 8, 30)
    assert record["facility_id"] == "F01"


def test_escapes_round_trip() -> None:
    d = Delimiters()
    text = "a|b^c~d\\e&f\r\ng·咳嗽"
    escaped = escape_text(text, d)
    assert not set("|^~&\r\n") & set(escaped)
    assert unescape(escaped, d, "x", "PV2-3") == text
    assert unescape("\\XE5\\\\X92\\\\XB3\\", d, "x", "f") == "咳"  # UTF-8 bytes in hex
    assert unescape("a\\.br\\b\\H\\c\\N\\", d, "x", "f") == "a\nbc"


# ---------------------------------------------------------------------------------------
# latest_versions


def test_latest_versions_later_message_wins_ties_and_input_is_kept() -> None:
    t1, t2 = pd.Timestamp("2025-01-05 08:00"), pd.Timestamp("2025-01-05 09:00")
    frame = pd.DataFrame(
        {
            "source_visit_id": ["v1", "v2", "v1", "v1", "v2"],
            "updated_at": [t1, t2, t2, t2, t1],
            "row_ref": ["m1", "m2", "m3", "m4", "m5"],
        }
    )
    before = frame.copy()
    latest = latest_versions(frame)
    assert dict(zip(latest["source_visit_id"], latest["row_ref"], strict=True)) == {
        "v1": "m4",
        "v2": "m2",
    }
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(SchemaError, match="updated_at"):
        latest_versions(frame.drop(columns="updated_at"))


def test_extract_result_of_empty_folder(tmp_path: Path) -> None:
    result = extract_hl7_visits(tmp_path)
    assert result.visits.empty and list(result.visits.columns) == list(RAW_COLUMNS)
    assert result.rejected.empty and result.files.empty
