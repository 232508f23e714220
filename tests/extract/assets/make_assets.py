"""Write the HL7 fixtures of this folder (run once; the files are committed).

All people, numbers and addresses here are invented. Each malformed file also holds good
messages, which must still be read.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def message(
    control: str,
    *,
    trigger: str = "A04",
    version_time: str = "20250105083000+0800",
    visit: str = "F01-20250105-00001",
    name: str = "王^伟",
    patient_class: str = "O",
    admit: str = "20250105081500+0800",
    complaint: str = "^发热3天，咳嗽",
    temperature: str = "38.5|Cel^degree Celsius^UCUM",
    codes: tuple[str, ...] = ("J11.1^流行性感冒^I10",),
    msh_type: str = "",
    charset: str = "UNICODE UTF-8",
) -> list[str]:
    """Segments of one ADT message (no terminators)."""
    msg_type = msh_type or f"ADT^{trigger}^ADT_A01"
    segments = [
        f"MSH|^~\\&|F01_HIS|F01^F01^L|SENTINEL|CNCDC|{version_time}||{msg_type}|{control}"
        f"|P|2.5.1|||NE|AL|CHN|{charset}",
        f"EVN||{version_time}|||||F01^F01^L",
        "PID|1||F01000000101^^^F01^MR~31010519800315001X^^^CHN^NNCHN||"
        f"{name}||19800315|M|||上海市长宁区华阳路112弄3号^^上海市^上海市^310105^CHN^H^^310105001000"
        "||^PRN^CP^^^^^^^^^13812345678",
        f"PV1|1|{patient_class}|FEV^^^F01" + "|" * 16 + visit + "|" * 25 + admit,
    ]
    if complaint:
        segments.append(f"PV2|||{complaint}")
    if temperature:
        segments.append(f"OBX|1|NM|8310-5^Body temperature^LN||{temperature}|||||F|||{admit}")
    segments += [f"DG1|{i}||{code}||{admit}|W" for i, code in enumerate(codes, 1)]
    return segments


def batch(name: str, messages: list[list[str]], *, trailer: bool = True) -> str:
    head = "|^~\\&|HIP|310105^310105^L|SENTINEL|CNCDC|20250105235959+0800"
    lines = [f"FHS{head}||{name}||x", f"BHS{head}||||x"]
    for m in messages:
        lines += m
    if trailer:
        lines += [f"BTS|{len(messages)}", "FTS|1"]
    return "".join(line + "\r" for line in lines)


def main() -> None:
    # ordinary file: \r\n separators, no envelope, escapes, versions, other offsets, °F
    ordinary = [
        message(
            "F01-1-A04",
            name="欧阳^明轩",
            complaint="^腹泻\\T\\腹痛\\R\\3次\\E\\天\\X0A\\伴发热",
            codes=("A09.9^感染性胃肠炎^I10", "R50.9^发热^I10"),
        ),
        message(
            "F01-1-A08",
            trigger="A08",
            version_time="20250105023000-0500",  # 15:30 Shanghai time
            name="欧阳^明轩",
            complaint="^腹泻\\T\\腹痛\\R\\3次\\E\\天\\X0A\\伴发热",
            temperature="101.3|[degF]^degree Fahrenheit^UCUM",
            codes=("A09.9^感染性胃肠炎^I10",),
        ),
        message(
            "F02-7-A01",
            trigger="A01",
            visit="F02-20250105-00007",
            name="Smith^John^Q",
            patient_class="I",
            admit="202501051000",
            complaint="chest pain\\F\\short of breath",  # text only in component 1
            temperature="",
            codes=(),
        ),
        message(
            "F02-7-A03",
            trigger="A03",
            version_time="20250106090000+0800",
            visit="F02-20250105-00007",
            name="Smith^John^Q",
            patient_class="I",
            admit="202501051000",
            complaint="",
            temperature="",
            codes=("I20.9^Angina^I10",),
        ),
    ]
    text = "".join("\r\n".join(m) + "\r\n" for m in ordinary)
    (HERE / "ordinary.hl7").write_bytes(text.encode("utf-8"))

    good = message("GOOD-1")
    good2 = message("GOOD-2", visit="F01-20250105-00002")

    # truncated: the last message is cut inside PID and the file has no BTS/FTS
    cut = message("CUT-1", visit="F01-20250105-00003")
    cut_text = "\r".join(cut)[:300]
    (HERE / "truncated.hl7").write_bytes(
        (batch("truncated.hl7", [good], trailer=False) + cut_text).encode("utf-8")
    )

    # wrong delimiters: segments use "#" while MSH declares "|"; bad MSH-2 characters
    wrong = [s if s.startswith("MSH") else s.replace("|", "#") for s in message("WRONG-1")]
    bad_msh2 = message("WRONG-2")
    bad_msh2[0] = bad_msh2[0].replace("MSH|^~\\&|", "MSH|^^\\&|", 1)
    (HERE / "wrong_delimiters.hl7").write_bytes(
        batch("wrong_delimiters.hl7", [good, wrong, bad_msh2, good2]).encode("utf-8")
    )

    # not ADT: a lab result and an unsupported ADT trigger (A02 transfer)
    oru = message("ORU-1", msh_type="ORU^R01^ORU_R01")
    a02 = message("A02-1", msh_type="ADT^A02^ADT_A02")
    (HERE / "non_adt.hl7").write_bytes(
        batch("non_adt.hl7", [good, oru, a02, good2]).encode("utf-8")
    )

    # bad timestamps: a month 13 in PV1-44, a cut MSH-7
    bad_admit = message("BADTS-1", admit="20251305081500+0800")
    bad_msh7 = message("BADTS-2", version_time="2025010508")
    (HERE / "bad_timestamp.hl7").write_bytes(
        batch("bad_timestamp.hl7", [good, bad_admit, bad_msh7, good2]).encode("utf-8")
    )

    # missing PV1-19
    no_visit = message("NOVISIT-1", visit="")
    (HERE / "missing_visit_number.hl7").write_bytes(
        batch("missing_visit_number.hl7", [good, no_visit, good2]).encode("utf-8")
    )

    # GB18030 export (as many Chinese HIS write), with characters outside GB2312
    gb = [
        message("GB-1", name="䶮^晗", charset="GB18030"),
        message("GB-2", visit="F01-20250105-00002", charset="GB18030"),
    ]
    (HERE / "gb18030.hl7").write_bytes(batch("gb18030.hl7", gb).encode("gb18030"))

    # invalid UTF-8: one message holds bytes that are neither UTF-8 nor GB18030
    marker = "BROKENNAME"
    broken = message("BYTES-1", name=f"{marker}^伟")
    data = batch("invalid_utf8.hl7", [good, broken, good2]).encode("utf-8")
    (HERE / "invalid_utf8.hl7").write_bytes(data.replace(marker.encode(), b"\xff\xfe\x80"))

    # not HL7 at all (a CSV exported with the wrong extension) before one good message
    (HERE / "not_hl7.hl7").write_bytes(
        ("visit_id,name\rF01-1,x\r" + "\r".join(good) + "\r").encode("utf-8")
    )


if __name__ == "__main__":
    main()
