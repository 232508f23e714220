"""The simulated HL7 v2.5.1 ADT feed: one batch file of messages per arrival day.

Messages follow the PHIN Messaging Guide for Syndromic Surveillance (ED, UC and
inpatient settings, release 2.0), adapted to a Chinese source: a first version of a
visit is a registration ``ADT^A04^ADT_A01``, a later version (correction) an update
``ADT^A08^ADT_A01`` carrying the complete current state of the visit (all DG1/OBX
segments again, so an A08 replaces what the earlier messages said).

File layout (what a reader relies on)
-------------------------------------
``out_dir/adt_YYYYMMDD.hl7`` for each arrival day, UTF-8 (``MSH-18 = UNICODE UTF-8``),
written atomically (``.part`` then rename), also when nothing arrived that day::

    FHS|^~\\&|HIP|310105^310105^L|SENTINEL|CNCDC|<file time>||adt_YYYYMMDD.hl7||adt_YYYYMMDD
    BHS|^~\\&|HIP|310105^310105^L|SENTINEL|CNCDC|<file time>||||adt_YYYYMMDD
    MSH|… EVN|… PID|… PV1|… [PV2|…] [OBX|…] [DG1|…]…   (one message per visit version)
    BTS|<number of messages>
    FTS|1

Every segment, including the envelope segments, ends with a carriage return ``\\r`` and
nothing else: there is no ``\\n`` anywhere in a file (HL7 v2 fixes ``\\r`` as the
segment terminator; raw CR/LF inside values are escaped). ``hl7.split_file`` reads such a
file directly (it drops FHS/BHS/BTS/FTS and groups segments by MSH), as does any reader
that splits on ``\\r`` and starts a message at each ``MSH``. Messages are ordered by
version time (``MSH-7``), registrations before updates at equal times, then by visit.

Field contents
--------------
* Times are ``YYYYMMDDHHMMSS+0800`` (local Shanghai time with its offset, seconds
  resolution); birth date ``PID-7`` is ``YYYYMMDD``. ``MSH-7``/``EVN-2`` are the version
  time (``created_at`` for A04, ``updated_at`` for A08); ``PV1-44``, ``OBX-14`` and
  ``DG1-5`` are the visit time.
* ``MSH-10`` (control id) is ``<visit_id>-<MSH-7 without offset>``: unique as long as two
  versions of one visit are not stamped within the same second.
* ``PID-3`` MRN ``<patient_id>^^^<facility_id>^MR`` and, when known, the resident ID
  number ``~<id_number>^^^CHN^NNCHN``. ``PID-5`` ``<family>^<given>`` (compound surnames
  such as 欧阳 are the family name). ``PID-11`` ``<address>^^上海市^上海市^<district
  code>^CHN^H^^<12-digit street code>``: the district code is ``residence_code[:6]`` or
  ``310105`` (the simulated district) when the source has no code; component 9 is only
  present when the source records the street code.
* ``PV1-2`` ``O`` (outpatient) or ``E`` (emergency); ``PV1-3`` ``<dept>^^^<facility_id>``;
  ``PV1-19`` the visit id. ``PV2-3.2`` the chief complaint (PV2 is left out when there is
  none). ``OBX`` (LOINC 8310-5, UCUM ``Cel``) only when a temperature was measured.
  One ``DG1`` per ICD-10 code (``I10`` coding system, type ``W`` working).
* Text is escaped with ``\\F\\ \\S\\ \\R\\ \\E\\ \\T\\`` for ``| ^ ~ \\ &`` and ``\\Xhh\\``
  for control characters (so CR is ``\\X0D\\``, LF ``\\X0A\\``); ``hl7``'s
  ``Message.unescape`` reverses both. Trailing whitespace of the chief complaint is
  dropped, since it ends its segment and HL7 readers strip segment ends.
* Missing values leave their field (or repetition, or segment) empty; never ``nan``.

Messages are built column-wise with Arrow string kernels, not one Python object per
message: a year of a district's visits is about 750,000 messages. The kernels and the
name/diagnosis splitting are shared with :mod:`sentinel.simulator.fhir`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.simulator.records import DayBatch

Event = Literal["A04", "A08"]
Array: TypeAlias = "pa.Array | pa.ChunkedArray"
Part: TypeAlias = "pa.Array | pa.ChunkedArray | str"

DEFAULT_DISTRICT_CODE = "310105"
"""District written into PID-11.5 when the source has no residence code (Changning)."""

COMPOUND_SURNAMES = frozenset((
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "夏侯",
    "轩辕", "令狐", "宇文", "司徒", "端木", "澹台", "公冶", "宗政", "濮阳", "淳于", "太叔",
    "申屠", "闾丘", "东郭", "南宫", "西门", "百里",
))  # fmt: skip

VERSION_TIME: dict[Event, str] = {"A04": "created_at", "A08": "updated_at"}
_KINDS: tuple[tuple[str, Event], ...] = (("visits", "A04"), ("corrections", "A08"))
_PATIENT_CLASS: dict[str, str] = {"outpatient": "O", "emergency": "E", "inpatient": "I"}
_SEX: dict[str, str] = {"M": "M", "F": "F", "男": "M", "女": "F"}

# ---------------------------------------------------------------------------------------
# Scalar reference implementations (and the fallback for untidy values)

_ESCAPE_OF: dict[str, str] = {
    "\\": "\\E\\",
    "|": "\\F\\",
    "^": "\\S\\",
    "~": "\\R\\",
    "&": "\\T\\",
    **{chr(c): f"\\X{c:02X}\\" for c in (*range(0x20), 0x7F)},
}
_SPECIAL = re.compile(r"[\\|^~&\x00-\x1f\x7f]")  # the keys of _ESCAPE_OF; also valid RE2


def _escape_match(match: re.Match[str]) -> str:
    return _ESCAPE_OF[match.group()]


def escape_text(text: str) -> str:
    """Escape HL7 delimiters and control characters in a value (``^~\\&`` encoding)."""
    return _SPECIAL.sub(_escape_match, text)


def split_chinese_name(name: str) -> tuple[str, str]:
    """Split a Chinese personal name into (family name, given name).

    The family name is the first character, or the first two for a compound surname
    (欧阳, 司马, 诸葛 …). Names with a middle dot (transliterated minority or foreign
    names such as 买买提·艾力) are not split: the whole name is the given name.
    """
    name = name.strip()
    if not name or "·" in name or "•" in name:
        return "", name
    if len(name) > 2 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


def split_diagnoses(codes: str, names: str) -> list[tuple[str, str]]:
    """(ICD-10 code, name) pairs of ``;``-separated aligned lists; empty codes dropped."""
    labels = names.split(";")
    return [
        (code.strip(), labels[k].strip() if k < len(labels) else "")
        for k, code in enumerate(codes.split(";"))
        if code.strip()
    ]


def local_times(column: pd.Series) -> np.ndarray:
    """A time column as naive local ``datetime64[s]`` (tz-aware input is converted)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(column.dtype):
        column = pd.to_datetime(column)
    return column.to_numpy(dtype="datetime64[s]")


# ---------------------------------------------------------------------------------------
# Column-wise text building with Arrow (shared with the FHIR writer)

STRING = pa.large_string()
EMPTY = pa.scalar("", STRING)
NULL = pa.scalar(None, STRING)
_COMPOUND_SURNAMES = pa.array(sorted(COMPOUND_SURNAMES), type=STRING)


def join_parts(*parts: Part) -> Array:
    """Row-wise concatenation of columns and constants; null where any part is null."""
    args = [
        pa.scalar(p, STRING) if isinstance(p, str) else p if p.type == STRING else p.cast(STRING)
        for p in parts
    ]
    return pc.binary_join_element_wise(*args, EMPTY)


def optional_parts(*parts: Part) -> Array:
    """Row-wise concatenation; ``""`` where any part is null (an optional element)."""
    return pc.fill_null(join_parts(*parts), EMPTY)


def nonempty(arr: Array) -> Array:
    """``arr`` with empty strings as null."""
    return pc.if_else(pc.equal(arr, EMPTY), NULL, arr)


def string_column(column: pd.Series) -> Array:
    """A text column as Arrow strings, missing and empty values as null."""
    arr = pa.array(column, type=STRING, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return nonempty(arr)


def lookup(arr: Array, table: dict[str, str], unknown: str) -> Array:
    """``table[value]`` per row, ``unknown`` for other values, ``""`` for nulls."""
    keys = pa.array(list(table), type=STRING)
    found = pc.take(pa.array(list(table.values()), type=STRING), pc.index_in(arr, keys))
    return pc.if_else(pc.is_null(arr), EMPTY, pc.fill_null(found, pa.scalar(unknown, STRING)))


def split_names(names: Array) -> tuple[Array, Array]:
    """Family and given names (null when empty), as :func:`split_chinese_name` splits."""
    names = pc.utf8_trim_whitespace(names)
    first2 = pc.utf8_slice_codeunits(names, 0, 2)
    compound = pc.and_(
        pc.is_in(first2, value_set=_COMPOUND_SURNAMES),
        pc.greater(pc.utf8_length(names), 2),
    )
    dotted = pc.match_substring_regex(names, "[·•]")
    family = pc.if_else(compound, first2, pc.utf8_slice_codeunits(names, 0, 1))
    given = pc.if_else(
        compound, pc.utf8_slice_codeunits(names, 2), pc.utf8_slice_codeunits(names, 1)
    )
    return nonempty(pc.if_else(dotted, NULL, family)), nonempty(pc.if_else(dotted, names, given))


def explode_diagnoses(codes: Array, names: Array) -> tuple[Array, Array, Array, Array]:
    """One row per diagnosis: (visit row, number 1…, ICD-10 code, name or null).

    ``codes``/``names`` are ``;``-separated aligned lists (null when empty). The result is
    that of :func:`split_diagnoses` row by row, which handles untidy lists (padding, empty
    items, fewer names than codes).
    """
    code_lists = pc.split_pattern(codes, ";")
    name_lists = pc.split_pattern(pc.fill_null(names, EMPTY), ";")
    flat = pc.list_flatten(code_lists)
    n_codes = pc.list_value_length(code_lists)
    checks = (
        pc.equal(pc.utf8_trim_whitespace(flat), flat),
        pc.not_equal(flat, EMPTY),
        pc.equal(n_codes, pc.list_value_length(name_lists)),
    )
    if all(pc.all(c).as_py() is not False for c in checks):  # all() of nothing is null
        lengths = pc.fill_null(n_codes, 0).to_numpy(zero_copy_only=False)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        numbers = np.arange(len(flat), dtype=np.int64) - starts + 1
        labels = pc.list_flatten(pc.filter(name_lists, pc.is_valid(codes)))
        return (
            pc.list_parent_indices(code_lists),
            pc.cast(pa.array(numbers), STRING),
            flat,
            nonempty(pc.utf8_trim_whitespace(labels)),
        )
    rows: list[int] = []
    numbered: list[str] = []
    found: list[str] = []
    labelled: list[str | None] = []
    pairs = zip(codes.to_pylist(), names.to_pylist(), strict=True)
    for i, (code_list, name_list) in enumerate(pairs):
        for n, (code, label) in enumerate(split_diagnoses(code_list or "", name_list or ""), 1):
            rows.append(i)
            numbered.append(str(n))
            found.append(code)
            labelled.append(label or None)
    return (
        pa.array(rows, type=pa.int64()),
        pa.array(numbered, type=STRING),
        pa.array(found, type=STRING),
        pa.array(labelled, type=STRING),
    )


def timestamps(column: pd.Series) -> Array:
    """A local time column as Arrow ``timestamp[s]`` (NaT as null)."""
    return pa.array(local_times(column), type=pa.timestamp("s"))


def versions_in_order(batch: DayBatch, columns: tuple[str, ...]) -> pd.DataFrame:
    """First versions and corrections of ``batch`` in feed order.

    Adds ``_version`` (version time) and ``_rank`` (0 first version, 1 correction) and
    sorts by version time, rank and visit id, so that output does not depend on row order.
    """
    parts = []
    for rank, (name, event) in enumerate(_KINDS):
        frame: pd.DataFrame = getattr(batch, name)
        if frame.empty:
            continue
        version = local_times(frame[VERSION_TIME[event]])
        parts.append(frame[list(columns)].assign(_version=version, _rank=rank))
    if not parts:
        return pd.DataFrame(columns=[*columns, "_version", "_rank"])
    both = pd.concat(parts, ignore_index=True)
    for col in ("visit_id", "facility_id", "patient_id", "setting"):
        if both[col].isna().any() or (both[col].astype(str) == "").any():
            raise ValueError(f"column {col!r} has missing values")
    if both["_version"].isna().any():
        raise ValueError("a version time (created_at or updated_at) is missing")
    return both.sort_values(["_version", "_rank", "visit_id"], kind="stable", ignore_index=True)


def check_settings(settings: Array, known: Mapping[str, object]) -> None:
    """Raise ``ValueError`` for a ``setting`` outside ``known``."""
    unknown = set(pc.unique(settings).to_pylist()) - known.keys()
    if unknown:
        raise ValueError(f"setting {sorted(unknown, key=str)[0]!r} is not one of {sorted(known)}")


def data_of(lines: Array) -> memoryview:
    """The UTF-8 bytes of all values of ``lines`` laid end to end (no copy)."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    lines = lines.cast(STRING)
    if len(lines) == 0:
        return memoryview(b"")
    if lines.null_count:
        raise AssertionError("a generated line is null (a required part was missing)")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[start:end]


# ---------------------------------------------------------------------------------------
# HL7 messages

_USED = (
    "visit_id", "facility_id", "dept", "setting", "visit_time", "patient_id", "name",
    "id_number", "phone", "sex", "birth_date", "address", "residence_code",
    "chief_complaint", "diagnosis_codes", "diagnosis_names", "temperature_c",
)  # fmt: skip


def escaped(arr: Array) -> Array:
    """HL7-escaped ``arr`` (:func:`escape_text`); columns without specials pass through."""
    if not pc.any(pc.match_substring_regex(arr, _SPECIAL.pattern)).as_py():
        return arr
    return pa.array([None if v is None else escape_text(v) for v in arr.to_pylist()], STRING)


def hl7_times(times: Array, *, date_only: bool = False) -> Array:
    """``YYYYMMDDHHMMSS+0800`` (or ``YYYYMMDD``) of Arrow timestamps; null stays null."""
    if date_only:
        return pc.replace_substring(
            pc.cast(pc.cast(times, pa.date32(), safe=False), STRING), "-", ""
        )
    # a cast prints "YYYY-MM-DD HH:MM:SS" far faster than pc.strftime formats
    return join_parts(pc.replace_substring_regex(pc.cast(times, STRING), "[-: ]", ""), "+0800")


def _temperatures(values: np.ndarray) -> Array:
    tenths = np.round(values, 1)
    return pa.array(
        [f"{t:.1f}" if math.isfinite(t) else None for t in tenths.tolist()], type=STRING
    )


def render_messages(frame: pd.DataFrame) -> Array:
    """HL7 messages (segments ending in ``\\r``) of the rows of :func:`versions_in_order`."""
    settings = string_column(frame["setting"])
    check_settings(settings, _PATIENT_CLASS)
    msg_time = hl7_times(pa.array(frame["_version"].to_numpy(), type=pa.timestamp("s")))
    vt = hl7_times(timestamps(frame["visit_time"]))
    vid = escaped(string_column(frame["visit_id"]))
    fac = escaped(string_column(frame["facility_id"]))
    event = pc.take(
        pa.array(["ADT^A04^ADT_A01", "ADT^A08^ADT_A01"], type=STRING),
        pa.array(frame["_rank"].to_numpy()),
    )
    hd = join_parts(fac, "^", fac, "^L")
    msh_evn = join_parts(
        "MSH|^~\\&|", fac, "_HIS|", hd, "|SENTINEL|CNCDC|", msg_time, "||", event, "|",
        vid, "-", pc.utf8_slice_codeunits(msg_time, 0, 14),
        "|P|2.5.1|||NE|AL|CHN|UNICODE UTF-8\rEVN||", msg_time, "|||||", hd, "\r",
    )  # fmt: skip
    pid3 = join_parts(
        escaped(string_column(frame["patient_id"])), "^^^", fac, "^MR",
        optional_parts("~", escaped(string_column(frame["id_number"])), "^^^CHN^NNCHN"),
    )  # fmt: skip
    family, given = split_names(string_column(frame["name"]))
    pid5 = join_parts(pc.fill_null(escaped(family), EMPTY), optional_parts("^", escaped(given)))
    street = escaped(string_column(frame["residence_code"]))
    address = escaped(string_column(frame["address"]))
    district = pc.fill_null(pc.utf8_slice_codeunits(street, 0, 6), DEFAULT_DISTRICT_CODE)
    pid11 = pc.if_else(
        pc.or_(pc.is_valid(address), pc.is_valid(street)),
        join_parts(
            pc.fill_null(address, EMPTY), "^^上海市^上海市^", district, "^CHN^H",
            optional_parts("^^", street),
        ),
        EMPTY,
    )  # fmt: skip
    pid = pc.utf8_rtrim(
        join_parts(
            "PID|1||", pid3, "||", pid5, "||",
            pc.fill_null(hl7_times(timestamps(frame["birth_date"]), date_only=True), EMPTY),
            "|", lookup(string_column(frame["sex"]), _SEX, "U"), "|||", pid11, "||",
            optional_parts("^PRN^CP^^^^^^^^^", escaped(string_column(frame["phone"]))),
        ),
        characters="|",
    )  # fmt: skip
    pv1 = join_parts(
        "PV1|1|", lookup(settings, _PATIENT_CLASS, ""), "|",
        pc.fill_null(escaped(string_column(frame["dept"])), EMPTY), "^^^", fac,
        "|" * 16, vid, "|" * 25, pc.fill_null(vt, EMPTY), "\r",
    )  # fmt: skip
    # a segment's trailing whitespace does not survive HL7 readers (hl7.split_file strips)
    complaint = nonempty(pc.utf8_rtrim_whitespace(string_column(frame["chief_complaint"])))
    pv2 = optional_parts("PV2|||^", escaped(complaint), "\r")
    obx = optional_parts(
        "OBX|1|NM|8310-5^Body temperature^LN||",
        _temperatures(frame["temperature_c"].to_numpy(dtype=float, na_value=np.nan)),
        "|Cel^degree Celsius^UCUM|||||F|||", pc.fill_null(vt, EMPTY), "\r",
    )  # fmt: skip
    # escaping neither adds nor removes ";", so whole columns are escaped before splitting
    rows, numbers, codes, labels = explode_diagnoses(
        escaped(string_column(frame["diagnosis_codes"])),
        escaped(string_column(frame["diagnosis_names"])),
    )
    dg1_each = join_parts(
        "DG1|", numbers, "||", codes, "^", pc.fill_null(labels, EMPTY), "^I10||",
        pc.fill_null(pc.take(vt, rows), EMPTY), "|W\r",
    )  # fmt: skip
    counts = np.bincount(np.asarray(rows, dtype=np.int64), minlength=len(frame))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), type=pa.int32())
    dg1 = pc.binary_join(pa.ListArray.from_arrays(offsets, dg1_each.cast(STRING)), EMPTY)
    return join_parts(msh_evn, pid, "\r", pv1, pv2, obx, dg1)


class Hl7FileWriter:
    """Writes each day's visit versions as one HL7 v2.5.1 ADT batch file (see module doc).

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder that receives ``adt_YYYYMMDD.hl7`` files (created if missing).
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._last_day: date | None = None
        self._closed = False

    def write(self, batch: DayBatch) -> int:
        """Write the file of ``batch.day``; return the number of messages written.

        Raises
        ------
        ValueError
            If the writer is closed, ``batch.day`` does not follow the previous day (a
            repeated day would overwrite that day's file), or required values are missing.
        """
        if self._closed:
            raise ValueError("Hl7FileWriter is closed")
        if self._last_day is not None and batch.day <= self._last_day:
            raise ValueError(f"batch.day {batch.day} does not follow {self._last_day}")
        self._last_day = batch.day
        frame = versions_in_order(batch, _USED)
        stamp = f"{batch.day:%Y%m%d}"
        file_time = f"{stamp}235959"
        if len(frame):
            file_time = max(file_time, f"{frame['_version'].iloc[-1]:%Y%m%d%H%M%S}")
        name = f"adt_{stamp}.hl7"
        header = f"|^~\\&|HIP|310105^310105^L|SENTINEL|CNCDC|{file_time}+0800"
        target = self.out_dir / name
        part = target.with_name(name + ".part")
        with part.open("wb") as out:
            out.write(f"FHS{header}||{name}||adt_{stamp}\rBHS{header}||||adt_{stamp}\r".encode())
            if len(frame):
                out.write(data_of(render_messages(frame)))
            out.write(f"BTS|{len(frame)}\rFTS|1\r".encode())
        os.replace(part, target)
        return len(frame)

    def close(self) -> None:
        """Finish writing (every file is complete when ``write`` returns)."""
        self._closed = True

    def __enter__(self) -> Hl7FileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
