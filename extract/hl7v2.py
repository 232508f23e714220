"""Extract visits from HL7 v2 ADT messages (files, folders, or one message at a time).

Reads the simulator's batch files (:mod:`sentinel.simulator.hl7v2`: FHS/BHS envelope,
``\\r`` terminators) and ordinary HL7 files (segments ended by ``\\r``, ``\\r\\n`` or
``\\n``, with or without an envelope). Every message becomes one raw visit record
(:data:`transform.records.RAW_COLUMNS`) or one rejection (``row_ref``, ``reason``), so
``messages read = visits + rejected``. Several messages of one visit (A04 registration,
A08 corrections, A01 admission, A03 discharge) are versions of it: one row each, with
``updated_at`` their version time; :func:`latest_versions` keeps the latest.

Fields (PHIN syndromic-surveillance guide, adapted to Chinese sources)
----------------------------------------------------------------------
======================  =================================================================
raw column              HL7 field
======================  =================================================================
updated_at              EVN-2 (recorded time), else MSH-7
visit_time              PV1-44 admit time, else EVN-2
source_visit_id         PV1-19.1 (required)
facility_id             PV1-3.4, else MSH-4.1
setting                 PV1-2: E emergency, O outpatient, I inpatient
source_patient_id       PID-3 repetition of type MR (else the first that is no ID number)
id_number               PID-3 repetition of type NNCHN (resident ID)
name                    PID-5 family^given: family+given for Chinese, else "given family"
birth_date, sex         PID-7 (date), PID-8 (M, F; other codes U)
address                 PID-11.1 and 11.2 (street lines; 11.3-11.6 are structured parts)
residence_code          PID-11.9 when it is a 12-digit division code
phone                   PID-13.12, else 13.1, else 13.6+13.7
chief_complaint         PV2-3.2, else PV2-3.1
diagnosis_codes         DG1-3.1 of every DG1, ``;``-separated in order
temperature_c           OBX-5 of the last OBX with OBX-3 ``8310-5`` ([degF] converted)
======================  =================================================================

Times with an offset are converted to Shanghai local time (a fixed +08:00: China has no
daylight saving time since 1991) and stored naive; times without an offset are taken as
local.

Why the segments are split here and not by ``hl7.parse``
--------------------------------------------------------
``hl7.parse`` builds a container object per field, repetition and component: about
2,500 messages/s, against 30,000+ with plain ``str.split`` on the few fields used (a
year of a district is ~750,000 messages). The ``hl7`` library is the reference the tests
compare this reader with. Escapes are undone by :func:`unescape`, which follows
``hl7.Message.unescape`` but decodes ``\\Xhh..\\`` as UTF-8 bytes (``hl7`` turns each
byte into a Latin-1 character) and raises :class:`ParseError` on a malformed sequence
where ``hl7`` logs the whole field value (an identifier leak).

Character sets
--------------
A file is decoded as UTF-8 when it is valid UTF-8, otherwise as GB18030 (common in
Chinese HIS exports) unless most of its non-ASCII lines are valid UTF-8; a message that
is not valid in the file's encoding is rejected and the others are kept. UTF-8 read as
GB18030 rarely fails (it turns into plausible-looking wrong characters), so a broken
message in a UTF-8 file is rejected rather than read as GB18030. ``Hl7Extract.files``
records the encoding chosen for each file.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from extract.errors import ParseError, SchemaError, SourceError, UnsupportedMessageError
from transform.records import RAW_COLUMNS

log = logging.getLogger("sentinel.extract.hl7")

Encoding = Literal["utf-8", "gb18030"]
SUPPORTED_TRIGGERS = frozenset({"A01", "A03", "A04", "A08"})
SETTING_OF_PATIENT_CLASS: dict[str, str] = {"E": "emergency", "O": "outpatient", "I": "inpatient"}
SEX_OF_CODE: dict[str, str] = {"M": "M", "F": "F", "男": "M", "女": "F"}
TEMPERATURE_LOINC = "8310-5"
FAHRENHEIT_UNITS = frozenset({"[degF]", "degF", "F", "°F", "℉"})
CELSIUS_UNITS = frozenset({"Cel", "C", "°C", "℃", "cel", ""})
LOCAL_OFFSET = timedelta(hours=8)  # Asia/Shanghai, no daylight saving time since 1991
ENVELOPE = frozenset({"FHS", "BHS", "BTS", "FTS"})
REJECTED_COLUMNS = ("row_ref", "reason")
FILE_COLUMNS = ("file", "encoding", "messages", "rejected", "declared_messages", "problem")

_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)(?:(\d\d)(\d\d)(\d\d)?(?:\.\d{1,4})?)?([+-]\d{4})?")
_TWELVE_DIGITS = re.compile(r"\d{12}")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_UNDECODED = re.compile(r"[\udc80-\udcff]")  # what errors="surrogateescape" leaves
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,16}")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_SEEN_IDS = frozenset({"EVN", "PID", "PV1", "PV2", "OBX", "DG1", "PD1", "NK1", "AL1", "IN1"})
_TIME_SHAPE = "YYYYMMDDHHMM[SS[.S]][+/-ZZZZ]"


# ---------------------------------------------------------------------------------------
# Delimiters, escapes, timestamps


@dataclass(frozen=True)
class Delimiters:
    """The separators a message declares in MSH-1 and MSH-2 (``|`` and ``^~\\&``)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


_DELIMITERS: dict[str, Delimiters] = {}


def read_delimiters(msh: str, row_ref: str) -> Delimiters:
    """The delimiters declared by an MSH segment.

    Raises
    ------
    UnsupportedMessageError
        If the segment is not an MSH segment or MSH-2 does not hold four distinct
        encoding characters (a fifth, the v2.7 truncation character, is allowed).
    """
    if not msh.startswith("MSH"):
        raise UnsupportedMessageError(
            "first segment is not MSH (not an HL7 message)", row_ref, "100"
        )
    sep = msh[3:4]
    end = msh.find(sep, 4) if sep else -1
    key = msh[3:end] if end > 0 else ""
    found = _DELIMITERS.get(key)
    if found is not None:
        return found
    chars = key[1:]
    if (
        not sep
        or end < 0
        or len(chars) not in (4, 5)
        or len(set(key)) != len(key)
        or any(c.isalnum() or c.isspace() for c in key)
    ):
        raise UnsupportedMessageError(
            "bad encoding characters in MSH-1/MSH-2 (expected a field separator and four "
            "distinct non-alphanumeric characters such as |^~\\&)",
            row_ref,
        )
    found = Delimiters(sep, chars[0], chars[1], chars[2], chars[3])
    _DELIMITERS[key] = found
    return found


def escape_text(value: str, delimiters: Delimiters) -> str:
    """Escape the delimiters and control characters of ``value`` (for ACK texts).

    The inverse of :func:`unescape` for plain text: ``|^~\\&`` (as declared) become
    ``\\F\\ \\S\\ \\R\\ \\E\\ \\T\\``, control characters ``\\Xhh\\``.
    """
    d = delimiters
    names = {d.escape: "E", d.field: "F", d.component: "S", d.repetition: "R", d.subcomponent: "T"}
    out = []
    for c in value:
        if c in names:
            out.append(f"{d.escape}{names[c]}{d.escape}")
        elif c < " " or c == "\x7f":
            out.append(f"{d.escape}X{ord(c):02X}{d.escape}")
        else:
            out.append(c)
    return "".join(out)


_FORMATTING: dict[str, str] = {
    ".br": "\n", ".sp": "\n", ".ce": "\n", ".fi": "", ".nf": "", ".in": "", ".ti": "",
    ".sk": " ", "H": "", "N": "",
}  # fmt: skip


def unescape(value: str, delimiters: Delimiters, row_ref: str, where: str) -> str:
    """Undo HL7 escape sequences (``\\F\\ \\S\\ \\R\\ \\E\\ \\T\\``, ``\\Xhh..\\``, formatting).

    Parameters
    ----------
    value : str
        Escaped text of one component.
    delimiters : Delimiters
        The message's delimiters (the escape character and what ``F S R T E`` stand for).
    row_ref, where : str
        Record reference and field name for the error message.

    Returns
    -------
    str
        The text; hexadecimal sequences are decoded as UTF-8 (Latin-1 if not valid),
        formatting commands (``.br`` …) become line breaks or nothing.

    Raises
    ------
    ParseError
        On an unterminated, empty or unknown escape sequence, or a character-set switch
        (``\\C..\\``, ``\\M..\\``), which this reader does not support.
    """
    esc = delimiters.escape
    if esc not in value:
        return value
    parts = value.split(esc)
    if len(parts) % 2 == 0:
        raise ParseError(f"unterminated escape sequence in {where}", row_ref)
    out = [parts[0]]
    specials = {
        "F": delimiters.field,
        "S": delimiters.component,
        "R": delimiters.repetition,
        "E": esc,
        "T": delimiters.subcomponent,
    }
    pending = bytearray()  # adjacent \\Xhh\\ sequences may split one UTF-8 character
    for i in range(1, len(parts), 2):
        seq = parts[i]
        if seq[:1] == "X" and len(seq) > 1 and len(seq) % 2 == 1:
            try:
                pending += bytes.fromhex(seq[1:])
            except ValueError:
                raise ParseError(f"bad hexadecimal escape in {where}", row_ref) from None
            if not parts[i + 1] and i + 2 < len(parts) and parts[i + 2][:1] == "X":
                continue
            out.append(_decode_hex(pending))
            pending.clear()
        elif seq in specials:
            out.append(specials[seq])
        elif seq in _FORMATTING or seq[:3] in _FORMATTING:
            out.append(_FORMATTING.get(seq, _FORMATTING.get(seq[:3], "")))
        elif seq[:1] == "Z":
            pass  # locally defined escape: no meaning outside the sending system
        else:
            raise ParseError(f"unsupported escape sequence in {where}", row_ref)
        out.append(parts[i + 1])
    return "".join(out)


def _decode_hex(raw: bytes | bytearray) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_timestamp(value: str, row_ref: str, where: str, *, date_only: bool = False) -> datetime:
    """An HL7 DTM value as naive Shanghai local time.

    Parameters
    ----------
    value : str
        ``YYYYMMDDHHMM[SS[.S[S[S[S]]]]][+/-ZZZZ]`` (or ``YYYYMMDD…`` when ``date_only``).
    row_ref, where : str
        Record reference and field name for the error message (the value itself is not
        repeated: a birth date is an identifier).
    date_only : bool
        Keep only the calendar date as written (birth dates); a time part is allowed.

    Raises
    ------
    ParseError
        If the value does not have that shape or is not a real date and time.
    """
    if len(value) == 8 and date_only and value.isdigit():  # the common birth date form
        try:
            return datetime(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            raise ParseError(
                f"bad timestamp in {where} (not a real date or time)", row_ref
            ) from None
    m = _TIME.fullmatch(value.strip())
    if m is None or (not date_only and m.group(4) is None):
        shape = "YYYYMMDD" if date_only else _TIME_SHAPE
        raise ParseError(
            f"bad timestamp in {where} (expected {shape}, got {len(value)} characters)", row_ref
        )
    year, month, day, hour, minute, second, offset = m.groups()
    try:
        if date_only:
            return datetime(int(year), int(month), int(day))
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        raise ParseError(f"bad timestamp in {where} (not a real date or time)", row_ref) from None
    if offset is None or offset == "+0800":
        return stamp
    hours, minutes = int(offset[1:3]), int(offset[3:5])
    if hours > 14 or minutes > 59:
        raise ParseError(f"bad timestamp in {where} (offset out of range)", row_ref)
    delta = timedelta(hours=hours, minutes=minutes)
    return stamp - (delta if offset[0] == "+" else -delta) + LOCAL_OFFSET


# ---------------------------------------------------------------------------------------
# One message


@dataclass(frozen=True)
class MessageHeader:
    """What an acknowledgement needs from MSH (values as written, still escaped)."""

    delimiters: Delimiters
    fields: tuple[str, ...]  # fields[n] is MSH-n; fields[0] is "MSH"

    def field(self, number: int) -> str:
        """MSH-``number`` as written ("" when absent)."""
        return self.fields[number] if number < len(self.fields) else ""

    @property
    def control_id(self) -> str:
        """MSH-10, the message control id."""
        return self.field(10)


def read_header(text: str, row_ref: str) -> MessageHeader:
    """The MSH segment of a message (the first segment), split into fields.

    Raises
    ------
    UnsupportedMessageError
        If the text does not start with a valid MSH segment.
    """
    first = split_segments(text)
    if not first:
        raise UnsupportedMessageError("empty message (no MSH segment)", row_ref, "100")
    return _header(first[0], row_ref)


def _header(msh: str, row_ref: str) -> MessageHeader:
    delims = read_delimiters(msh, row_ref)
    parts = msh.split(delims.field)
    return MessageHeader(delims, ("MSH", delims.field, *parts[1:]))


def split_segments(text: str) -> list[str]:
    """Segments of ``text`` (terminated by ``\\r``, ``\\r\\n`` or ``\\n``), stripped, non-empty."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [s for s in (seg.strip() for seg in text.split("\r")) if s]


def parse_message(text: str, row_ref: str, *, source: str = "hl7") -> dict[str, object]:
    """Convert one HL7 v2 ADT message into a raw visit record.

    Parameters
    ----------
    text : str
        One message (MSH first; segments ended by ``\\r``, ``\\r\\n`` or ``\\n``).
    row_ref : str
        Reference of the message, without identifiers (``adt_20250105.hl7#msg12``);
        becomes the record's ``row_ref`` and the reference of any error.
    source : str
        Configured source name written into ``source``.

    Returns
    -------
    dict
        One value per column of :data:`transform.records.RAW_COLUMNS`.

    Raises
    ------
    UnsupportedMessageError
        Not HL7, bad encoding characters, not ADT, a trigger other than A01/A03/A04/A08,
        or a version other than 2.x.
    ParseError
        A missing MSH/PID/PV1 segment or PV1-19 visit number, a bad timestamp, escape or
        temperature, an unknown patient class.
    """
    return dict(zip(RAW_COLUMNS, _parse(split_segments(text), row_ref, source), strict=True))


def _get(fields: Sequence[str], n: int) -> str:
    return fields[n] if n < len(fields) else ""


def _component(value: str, sep: str, n: int) -> str:
    parts = value.split(sep, n)
    return parts[n - 1] if len(parts) >= n else ""


def _padded(fields: list[str], size: int) -> list[str]:
    """``fields`` with at least ``size`` items (so ``fields[n]`` is always valid)."""
    if len(fields) < size:
        fields.extend([""] * (size - len(fields)))
    return fields


def _code(value: str) -> str:
    """A coded value fit for an error message (no free text)."""
    return repr(value) if _CODE.fullmatch(value) else "an unrecognised value"


_TIMES: dict[str, datetime] = {}  # a day's messages share few distinct minutes


def _time(value: str, row_ref: str, where: str) -> datetime:
    found = _TIMES.get(value)
    if found is None:
        found = parse_timestamp(value, row_ref, where)
        if len(_TIMES) > 200_000:
            _TIMES.clear()
        _TIMES[value] = found
    return found


def _parse(segments: list[str], row_ref: str, source: str) -> list[object]:
    if not segments:
        raise UnsupportedMessageError("empty message (no MSH segment)", row_ref, "100")
    head = _header(segments[0], row_ref)
    d = head.delimiters
    fs, cs, rs, esc = d.field, d.component, d.repetition, d.escape
    msh = _padded(list(head.fields), 13)
    type_code, trigger = [*msh[9].split(cs, 2), "", ""][:2]
    version = msh[12].split(cs, 1)[0]
    if not version.startswith("2."):
        what = f"version {_code(version)}" if version else "no version in MSH-12"
        raise UnsupportedMessageError(f"unsupported HL7 {what} (2.x expected)", row_ref, "203")
    if type_code != "ADT":
        raise UnsupportedMessageError(
            f"not an ADT message (MSH-9 type {_code(type_code)})", row_ref, "200"
        )

    found: dict[str, list[str]] = {}
    obx: list[list[str]] = []
    dg1: list[list[str]] = []
    for number, seg in enumerate(segments[1:], 2):
        seg_id = seg[:3]
        if (len(seg) > 3 and seg[3] != fs) or (
            seg_id not in _SEEN_IDS and not _SEGMENT_ID.fullmatch(seg_id)
        ):
            raise UnsupportedMessageError(
                f"malformed segment {number}: not a segment id followed by the field "
                f"separator {fs!r} declared in MSH-1 (wrong delimiters?)",
                row_ref,
            )
        if seg_id == "OBX":
            obx.append(_padded(seg.split(fs), 12))
        elif seg_id == "DG1":
            dg1.append(_padded(seg.split(fs), 4))
        elif seg_id in ("EVN", "PID", "PV1", "PV2"):
            if seg_id in found:
                raise ParseError(f"more than one {seg_id} segment", row_ref, "100")
            found[seg_id] = seg.split(fs)
        elif seg_id == "MSH":
            raise ParseError(
                "more than one MSH segment (two messages run together?)", row_ref, "100"
            )

    evn = _padded(found.get("EVN", []), 3)
    if not trigger:  # v2.2 and earlier carry the trigger in EVN-1 only
        trigger = evn[1]
    if trigger not in SUPPORTED_TRIGGERS:
        raise UnsupportedMessageError(
            f"unsupported trigger event {_code(trigger)} (A01, A03, A04, A08 are read)",
            row_ref,
            "201",
        )
    if "PID" not in found or "PV1" not in found:
        missing = " and ".join(n for n in ("PID", "PV1") if n not in found)
        raise ParseError(f"missing {missing} segment (message truncated?)", row_ref, "100")
    pid = _padded(found["PID"], 14)
    pv1 = _padded(found["PV1"], 45)

    def text(value: str, where: str) -> str | None:
        if esc in value:
            value = unescape(value, d, row_ref, where)
        return value.strip() or None

    # version and visit times
    msg_time = msh[7].split(cs, 1)[0]
    if not msg_time:
        raise ParseError("missing MSH-7 message time", row_ref, "101")
    updated = _time(msg_time, row_ref, "MSH-7")
    evn2 = evn[2].split(cs, 1)[0]
    event_time = _time(evn2, row_ref, "EVN-2") if evn2 else None
    if event_time is not None:
        updated = event_time
    admit = pv1[44].split(cs, 1)[0]
    visit_time = _time(admit, row_ref, "PV1-44") if admit else event_time
    if visit_time is None:
        raise ParseError("missing visit time (PV1-44 and EVN-2 are empty)", row_ref, "101")

    # visit
    visit_id = text(pv1[19].split(cs, 1)[0], "PV1-19")
    if visit_id is None:
        raise ParseError("missing PV1-19 visit number", row_ref, "101")
    patient_class = pv1[2].split(cs, 1)[0]
    setting = SETTING_OF_PATIENT_CLASS.get(patient_class)
    if setting is None:
        what = _code(patient_class) if patient_class else "empty"
        raise ParseError(
            f"unsupported PV1-2 patient class {what} (E, O, I are read)", row_ref, "103"
        )
    facility = text(_component(pv1[3], cs, 4).split(d.subcomponent, 1)[0], "PV1-3.4") or text(
        msh[4].split(cs, 1)[0], "MSH-4"
    )

    # patient
    patient_id = id_number = fallback_id = None
    for rep in pid[3].split(rs):
        parts = rep.split(cs, 5)
        ident = parts[0]
        if not ident:
            continue
        kind = parts[4] if len(parts) > 4 else ""
        if kind == "NNCHN" or (kind == "NN" and parts[3] == "CHN"):
            id_number = id_number or text(ident, "PID-3")
        elif kind == "MR":
            patient_id = patient_id or text(ident, "PID-3")
        elif fallback_id is None:
            fallback_id = text(ident, "PID-3")
    name = _person_name(pid[5].split(rs, 1)[0], d, row_ref)
    birth = pid[7].split(cs, 1)[0]
    birth_date = parse_timestamp(birth, row_ref, "PID-7", date_only=True) if birth else None
    sex_code = pid[8].split(cs, 1)[0].strip()
    sex = SEX_OF_CODE.get(sex_code, "U") if sex_code else None
    address, residence = _address(pid[11], d, row_ref)
    phone = _phone(pid[13], d, row_ref)

    # clinical content
    pv2 = _padded(found.get("PV2", []), 4)
    complaint_parts = pv2[3].split(cs, 2)
    complaint = text(complaint_parts[1], "PV2-3.2") if len(complaint_parts) > 1 else None
    complaint = complaint or text(complaint_parts[0], "PV2-3.1")
    codes = [code for dg in dg1 if (code := text(dg[3].split(cs, 1)[0], "DG1-3")) is not None]
    temperature = math.nan
    for ob in obx:
        if ob[3].split(cs, 1)[0] == TEMPERATURE_LOINC and ob[11] not in ("D", "W", "X"):
            temperature = _temperature(ob, d, row_ref)

    return [
        source, row_ref, visit_id, patient_id or fallback_id, facility, visit_time, setting,
        name, id_number, phone, sex, birth_date, address, residence, math.nan, math.nan,
        complaint, ";".join(codes), temperature, updated,
    ]  # fmt: skip


def _subcomponent1(value: str, d: Delimiters) -> str:
    return value.split(d.subcomponent, 1)[0] if d.subcomponent in value else value


def _person_name(xpn: str, d: Delimiters, row_ref: str) -> str | None:
    """PID-5 as one string: family+given for Chinese names, "given middle family" else."""
    if not xpn:
        return None
    parts = [*xpn.split(d.component, 3)[:3], "", ""]
    family, given, middle = (
        unescape(_subcomponent1(p, d), d, row_ref, "PID-5").strip() for p in parts[:3]
    )
    if _CJK.search(family + given + middle):
        return family + middle + given or None
    return " ".join(p for p in (given, middle, family) if p) or None


def _address(field: str, d: Delimiters, row_ref: str) -> tuple[str | None, str | None]:
    """(street lines, 12-digit residence code) of the home address in PID-11."""
    if not field:
        return None, None
    reps = field.split(d.repetition)
    rep = (
        reps[0]
        if len(reps) == 1
        else next((r for r in reps if _component(r, d.component, 7) == "H"), reps[0])
    )
    parts = rep.split(d.component, 9)
    parts += [""] * (9 - len(parts))
    lines = [unescape(_subcomponent1(p, d), d, row_ref, "PID-11").strip() for p in parts[:2]]
    code = parts[8].strip()
    residence = code if len(code) == 12 and _TWELVE_DIGITS.fullmatch(code) else None
    return " ".join(p for p in lines if p) or None, residence


def _phone(field: str, d: Delimiters, row_ref: str) -> str | None:
    """The first telephone number of PID-13 (XTN.12 unformatted, else XTN.1, else 6+7)."""
    cs = d.component
    for rep in field.split(d.repetition):
        number = (
            _component(rep, cs, 12)
            or _component(rep, cs, 1)
            or _component(rep, cs, 6) + _component(rep, cs, 7)
        )
        number = unescape(number, d, row_ref, "PID-13").strip()
        if number:
            return number
    return None


def _temperature(obx: list[str], d: Delimiters, row_ref: str) -> float:
    """Body temperature in °C of an OBX 8310-5 segment."""
    raw = _get(obx, 5)
    if d.component in raw:  # SN structured numeric: comparator^number
        raw = _component(raw, d.component, 2)
    try:
        value = float(raw)
    except ValueError:
        raise ParseError("OBX-5 temperature is not a number", row_ref, "102") from None
    if not math.isfinite(value):
        raise ParseError("OBX-5 temperature is not a finite number", row_ref, "102")
    unit = _component(_get(obx, 6), d.component, 1).strip()
    if unit in FAHRENHEIT_UNITS:
        return round((value - 32.0) * 5.0 / 9.0, 2)
    if unit in CELSIUS_UNITS:
        return value
    raise ParseError(
        f"unsupported OBX-6 temperature unit {_code(unit)} (Cel or [degF] expected)",
        row_ref,
        "103",
    )


# ---------------------------------------------------------------------------------------
# Files and folders


@dataclass(frozen=True)
class Hl7Extract:
    """What :func:`extract_hl7_visits` read.

    Attributes
    ----------
    visits : pandas.DataFrame
        One raw visit record per accepted message (:data:`transform.records.RAW_COLUMNS`),
        in file and message order; a visit has one row per version.
    rejected : pandas.DataFrame
        ``row_ref``, ``reason`` of every message (or stray segment run) not read.
    files : pandas.DataFrame
        One row per file: ``file``, ``encoding`` (``utf-8`` or ``gb18030``), ``messages``
        read, ``rejected``, ``declared_messages`` (BTS-1, or <NA>) and ``problem`` (a
        file-level finding such as a BTS count that does not match, else empty).
    """

    visits: pd.DataFrame
    rejected: pd.DataFrame
    files: pd.DataFrame

    @property
    def extracted(self) -> int:
        """Messages (and stray segment runs) read: ``len(visits) + len(rejected)``."""
        return len(self.visits) + len(self.rejected)


@dataclass
class _FileResult:
    rows: list[list[object]]
    rejected: list[tuple[str, str]]
    summary: tuple[object, ...]


def decode_hl7_bytes(data: bytes) -> tuple[str, Encoding, bool]:
    """Decode a file: (text, encoding, clean).

    ``clean`` is false when some bytes are not valid in the chosen encoding; they are
    left as lone surrogates (``errors="surrogateescape"``) so the messages holding them
    can be found and rejected.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), "utf-8", True
    except UnicodeDecodeError:
        pass
    as_utf8 = data.decode("utf-8", "surrogateescape")
    valid = broken = 0
    for line in as_utf8.replace("\n", "\r").split("\r"):
        if not line.isascii():
            if _UNDECODED.search(line):
                broken += 1
            else:
                valid += 1
    if valid > broken:
        return as_utf8, "utf-8", False
    try:
        return data.decode("gb18030"), "gb18030", True
    except UnicodeDecodeError:
        return data.decode("gb18030", "surrogateescape"), "gb18030", False


def _read_file(path: Path, source: str) -> _FileResult:
    text, encoding, clean = decode_hl7_bytes(path.read_bytes())
    name = path.name
    rows: list[list[object]] = []
    rejected: list[tuple[str, str]] = []
    messages: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    stray_at: int | None = None
    envelope = trailer = False
    declared: int | None = None
    for number, seg in enumerate(split_segments(text), 1):
        kind = seg[:3]
        if kind == "MSH":
            current = [seg]
            messages.append((f"{name}#msg{len(messages) + 1}", current))
            stray_at = None
        elif kind in ENVELOPE:
            current = None
            stray_at = None
            if kind in ("FHS", "BHS"):
                envelope, trailer = True, False
            else:
                trailer = True
                count = _get(seg.split(seg[3:4] or "|"), 1)
                if kind == "BTS" and count.strip().isdigit():
                    declared = (declared or 0) + int(count)
        elif current is not None:
            current.append(seg)
        elif stray_at is None:
            stray_at = number
            rejected.append(
                (f"{name}#seg{number}", "segments outside any message (no MSH segment; not HL7?)")
            )
    for k, (ref, segments) in enumerate(messages):
        truncated = envelope and not trailer and k == len(messages) - 1
        try:
            if not clean and any(_UNDECODED.search(s) for s in segments):
                raise ParseError(_undecodable_reason(segments, encoding), ref)
            row = _parse(segments, ref, source)
        except ParseError as err:
            reason = err.reason
            if truncated:
                reason = (
                    f"truncated message: file ends before its batch trailer (BTS/FTS); {reason}"
                )
            rejected.append((ref, reason))
            continue
        if truncated:
            rejected.append(
                (ref, "truncated message: file ends before its batch trailer (BTS/FTS)")
            )
            continue
        rows.append(row)
    problem = ""
    if declared is not None and declared != len(messages):
        problem = f"BTS declares {declared} messages, the file holds {len(messages)}"
    elif envelope and not trailer:
        problem = "file ends before its batch trailer (BTS/FTS): truncated"
    summary = (name, encoding, len(messages), len(rejected), declared, problem)
    log.info(
        "hl7_file_read",
        extra={
            "fields": {
                "file": name, "encoding": encoding, "messages": len(messages),
                "rejected": len(rejected), "problem": problem or "-",
            }
        },
    )  # fmt: skip
    return _FileResult(rows, rejected, summary)


def _undecodable_reason(segments: list[str], encoding: Encoding) -> str:
    other: Encoding = "gb18030" if encoding == "utf-8" else "utf-8"
    raw = "\r".join(segments).encode(encoding, "surrogateescape")
    try:
        raw.decode(other)
    except UnicodeDecodeError:
        return f"undecodable bytes: neither UTF-8 nor GB18030 (file read as {encoding})"
    return (
        f"undecodable bytes: not valid {encoding.upper()}, the encoding of the rest of the "
        f"file (valid {other.upper()}: a mixed-encoding file?)"
    )


def hl7_files(path: Path) -> list[Path]:
    """The files ``path`` names: itself, or the ``*.hl7`` files of a folder, sorted.

    Raises
    ------
    SourceError
        If ``path`` does not exist.
    """
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.glob("*.hl7") if p.is_file())
    if path.is_file():
        return [path]
    raise SourceError("no such HL7 file or folder", str(path))


def extract_hl7_visits(path: Path, source: str = "hl7") -> Hl7Extract:
    """Read every ADT message of an HL7 v2 file or folder of ``*.hl7`` files.

    Parameters
    ----------
    path : pathlib.Path
        A file (any name), or a folder whose ``*.hl7`` files are read in name order.
    source : str
        Configured source name, written into ``source``.

    Returns
    -------
    Hl7Extract
        Visits (one row per message: versions of a visit are kept, see
        :func:`latest_versions`), rejections with reasons, and a per-file summary.

    Raises
    ------
    SourceError
        If ``path`` does not exist.
    """
    # one frame per file: a year of messages as Python lists would cost memory and GC time
    frames: list[pd.DataFrame] = []
    rejected: list[tuple[str, str]] = []
    summaries: list[tuple[object, ...]] = []
    for file in hl7_files(path):
        result = _read_file(file, source)
        if result.rows:
            frames.append(records_frame(result.rows))
        rejected.extend(result.rejected)
        summaries.append(result.summary)
    files = pd.DataFrame(summaries, columns=list(FILE_COLUMNS))
    files = files.astype({"messages": "int64", "rejected": "int64", "declared_messages": "Int64"})
    visits = pd.concat(frames, ignore_index=True) if len(frames) > 1 else None
    return Hl7Extract(
        visits=visits if visits is not None else frames[0] if frames else records_frame([]),
        rejected=pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS), dtype="str"),
        files=files,
    )


_TIME_COLUMNS = ("visit_time", "birth_date", "updated_at")
_FLOAT_COLUMNS = ("lat", "lon", "temperature_c")


def records_frame(rows: Iterable[Sequence[object] | Mapping[str, object]]) -> pd.DataFrame:
    """A raw-visit DataFrame of records: sequences in :data:`RAW_COLUMNS` order, or dicts
    such as :func:`parse_message` returns (what an MLLP handler buffers).

    Text columns are ``str`` (missing as NaN), times ``datetime64[us]``, numbers float.
    """
    ordered = ([row[c] for c in RAW_COLUMNS] if isinstance(row, Mapping) else row for row in rows)
    values = list(zip(*ordered, strict=True)) or [()] * len(RAW_COLUMNS)
    data: dict[str, object] = {}
    for col, column in zip(RAW_COLUMNS, values, strict=True):
        if col in _TIME_COLUMNS:
            data[col] = pd.DatetimeIndex(column, dtype="datetime64[us]")
        elif col in _FLOAT_COLUMNS:
            data[col] = np.array(column, dtype="float64")
        else:
            data[col] = pd.array(column, dtype="str")
    return pd.DataFrame(data, columns=list(RAW_COLUMNS))


def latest_versions(
    visits: pd.DataFrame, key: Sequence[str] = ("source_visit_id",)
) -> pd.DataFrame:
    """The latest version of each visit: the row with the greatest ``updated_at``.

    Parameters
    ----------
    visits : pandas.DataFrame
        Raw visit records with several versions per visit, in message order.
    key : sequence of str
        Columns naming a visit (``("facility_id", "source_visit_id")`` where visit
        numbers are unique per facility only).

    Returns
    -------
    pandas.DataFrame
        A new frame, one row per visit in the order of the kept rows; on equal
        ``updated_at`` the later message wins. The input is not modified.

    Raises
    ------
    SchemaError
        If ``updated_at`` or a key column is missing.
    """
    missing = [c for c in (*key, "updated_at") if c not in visits.columns]
    if missing:
        raise SchemaError(f"latest_versions needs column(s) {', '.join(missing)}", "visits")
    order = np.arange(len(visits))
    ranked = visits.assign(_order=order).sort_values(["updated_at", "_order"], kind="stable")
    kept = ranked.drop_duplicates(list(key), keep="last").sort_values("_order")
    return kept.drop(columns="_order")
