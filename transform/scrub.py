"""Remove identifiers from free text (chief complaints) before it lands anywhere."""

from __future__ import annotations

import re
from collections.abc import Iterable

# 18-digit resident ID (last may be X) or old 15-digit; not part of a longer digit run.
ID_NUMBER = re.compile(
    r"(?<![0-9])(?:[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]|[1-9]\d{14})(?![0-9Xx])"
)
MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?![0-9])")
LANDLINE = re.compile(r"(?<![0-9])0\d{2,3}-?\d{7,8}(?![0-9])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# "联系电话"/"电话"/"身份证"/"患者" labels left dangling after removal are tidied up.
LABELS = re.compile(
    r"(?:联系电话|电话|手机|身份证号?|证件号|患者姓名|姓名|tel|phone|ID)[:：]?\s*(?=\[)",
    re.IGNORECASE,
)
REDACTED = "[已删除]"
# every ID number, mobile and landline pattern above contains 7 digits, possibly split by
# one separator (138-1234-5678 has runs of 3 and 4), so this cheap test gates them
LONG_NUMBER = re.compile(r"\d{7}|\d{3}[- ]\d{4}|\d[- ]?\d{3}[- ]?\d{4}")


def scrub_text(text: str, names: Iterable[str] = ()) -> str:
    """Return ``text`` with ID numbers, phone numbers, e-mails and the given names removed.

    Parameters
    ----------
    text : str
        Free text such as a chief complaint.
    names : iterable of str
        The patient's own name(s); every occurrence is removed (names of one character
        are ignored: they would erase ordinary words).

    Notes
    -----
    Removed spans are replaced by ``[已删除]`` so a reader sees that something was there.
    """
    if not text:
        return text
    out = EMAIL.sub(REDACTED, text) if "@" in text else text
    if LONG_NUMBER.search(out):  # most complaints hold no run of 7+ digits: skip the rest
        out = ID_NUMBER.sub(REDACTED, out)
        out = MOBILE.sub(REDACTED, out)
        out = LANDLINE.sub(REDACTED, out)
    for name in names:
        if name and len(name) >= 2:
            out = out.replace(name, REDACTED)
    return LABELS.sub("", out) if REDACTED in out else out
