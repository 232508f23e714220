"""Negation of symptom phrases in chief complaints, Chinese and English (NegEx-like).

A *trigger* (无, 否认, 不伴, 未见 …; no, denies, without …) negates the symptom phrases
that follow it as long as they form one list: phrases joined by 、/和/及/与/或/and/or,
optionally with filler words (明显, 任何, 出现; any, obvious, history of). Anything else
between two phrases ends the scope: punctuation (，。；), 但/伴/诉, "but", "with", or
ordinary words. So "无发热、咳嗽" negates both, "无发热，咳嗽2天" and "no fever but cough"
only fever, and "发热无咳嗽" only cough (scope runs forward only).

*Pseudo-triggers* look like negations but are not: "无明显诱因出现咳嗽" says there was no
obvious cause, not no cough; "不能排除" and "未见好转" likewise negate nothing. They are
matched before the triggers (longest cue wins) and do nothing.

*Post-triggers* ("(-)", "阴性", "negative") negate the phrase immediately before them,
as in "皮疹(-)".

The detector knows nothing about symptoms: the caller passes the character spans of the
phrases it found. Text is expected in simplified characters; matching ignores case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

CueKind = Literal["pre", "post", "pseudo"]

PRE_TRIGGERS: tuple[str, ...] = (
    "无明显", "无任何", "无", "否认", "未见", "未诉", "未出现", "未", "不伴有", "不伴",
    "未伴有", "未伴", "没有", "没", "排除", "除外", "非", "不",
    "no", "no longer", "denies", "denied", "deny", "denying", "without", "w/o",
    "negative for", "neg for", "not", "absence of", "free of",
)  # fmt: skip
PSEUDO_TRIGGERS: tuple[str, ...] = (
    "无明显诱因", "无明确诱因", "无诱因", "无明显原因", "无原因", "无明显好转", "无好转",
    "未见好转", "未见明显好转", "未好转", "未见缓解", "未缓解", "无缓解", "未愈", "不排除",
    "不能排除", "未排除", "待排除", "待排", "不除外", "不能除外", "非常", "未测", "未治疗",
    "未就诊", "未服药", "未用药", "无力", "不适", "不明", "不详", "不清楚",
    "no improvement", "not improved", "not improving", "no obvious cause",
    "no apparent cause", "no known cause", "not only", "no change", "not sure",
    "not resolved", "not resolving", "no better",
)  # fmt: skip
POST_TRIGGERS: tuple[str, ...] = ("(-)", "（-）", "(−)", "阴性", "negative", "neg")

# Between two phrases of one negated list: separators, conjunctions and fillers only.
_FILLERS = (
    "和", "及", "与", "或", "或者", "以及", "亦", "也", "明显", "明确", "任何", "其他",
    "出现", "再", "有", "发生", "过", "等", "and", "or", "nor", "any", "obvious",
    "significant", "history of", "associated", "recent", "new", "other", "further",
    "sign of", "signs of", "symptom of", "symptoms of", "complaint of", "complaints of",
    "c/o", "the", "a", "of", "also", "having", "has", "had", "experiencing",
)  # fmt: skip
_FILLER = "|".join(re.escape(f) for f in sorted(_FILLERS, key=len, reverse=True))
_GAP = re.compile(rf"(?:\s|[、/&+]|{_FILLER})*", re.IGNORECASE)
# A comma keeps the list going only if the list is closed by "or"/"nor"/"或":
# "denies fever, cough, or diarrhea" but not "no fever, cough x2d".
_COMMA_GAP = re.compile(rf"(?:\s|[,，]|{_FILLER})*", re.IGNORECASE)
_OR = re.compile(r"(?:(?<![a-z])n?or(?![a-z])|或)", re.IGNORECASE)
_POST_GAP = re.compile(r"[\s:：]*")


def _alternation(words: Iterable[str]) -> str:
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        body = re.escape(word)
        # Latin words need boundaries ("no" is not in "nose", "not" not in "nothing"); \b
        # would not do, since CJK characters count as word characters.
        if word[0].isascii() and word[0].isalpha():
            body = "(?<![a-z])" + body
        if word[-1].isascii() and word[-1].isalpha():
            body += "(?![a-z])"
        parts.append(body)
    return "|".join(parts)


@dataclass(frozen=True)
class Cue:
    """A negation cue found in a text: its span and what kind of cue it is."""

    start: int
    end: int
    kind: CueKind
    text: str


class NegationDetector:
    """Find negation cues in a text and decide which phrase spans they negate.

    Parameters
    ----------
    pre_triggers, pseudo_triggers, post_triggers : iterable of str
        Cue words; matching is case-insensitive, the longest cue at a position wins.
    """

    def __init__(
        self,
        pre_triggers: Iterable[str] = PRE_TRIGGERS,
        pseudo_triggers: Iterable[str] = PSEUDO_TRIGGERS,
        post_triggers: Iterable[str] = POST_TRIGGERS,
    ) -> None:
        kinds: dict[str, CueKind] = {}
        for words, kind in (
            (pre_triggers, "pre"),
            (post_triggers, "post"),
            (pseudo_triggers, "pseudo"),
        ):
            for word in words:
                kinds[word.lower()] = kind  # type: ignore[assignment]
        if not kinds:
            raise ValueError("NegationDetector needs at least one cue word")
        self._kinds = kinds
        self._pattern = re.compile(_alternation(kinds), re.IGNORECASE)

    def find_cues(self, text: str) -> list[Cue]:
        """All cues in ``text``, left to right, non-overlapping."""
        return [
            Cue(m.start(), m.end(), self._kinds[m.group().lower()], m.group())
            for m in self._pattern.finditer(text)
        ]

    def negated(self, text: str, spans: Sequence[tuple[int, int]]) -> list[bool]:
        """Which of the phrase ``spans`` of ``text`` are negated.

        Parameters
        ----------
        text : str
            The complaint (simplified characters).
        spans : sequence of (start, end)
            Character spans of the symptom phrases found in ``text``, sorted by start and
            not overlapping.

        Returns
        -------
        list of bool
            One flag per span, True where a cue negates that phrase.
        """
        flags = [False] * len(spans)
        if not spans:
            return flags
        starts = [s for s, _ in spans]
        for cue in self.find_cues(text):
            if any(s < cue.end and cue.start < e for s, e in spans):
                continue  # a cue inside a phrase is part of the phrase
            if cue.kind == "pre":
                for i in self._scope(text, spans, starts, cue.end):
                    flags[i] = True
            elif cue.kind == "post":
                before = [i for i, (_, e) in enumerate(spans) if e <= cue.start]
                if before and _POST_GAP.fullmatch(text, spans[before[-1]][1], cue.start):
                    flags[before[-1]] = True
        return flags

    @staticmethod
    def _scope(
        text: str, spans: Sequence[tuple[int, int]], starts: list[int], pos: int
    ) -> list[int]:
        """Indices of the phrases forming one list right after position ``pos``."""
        chain: list[int] = []
        first_comma: int | None = None
        last_gap = ""
        j = next((k for k, s in enumerate(starts) if s >= pos), len(spans))
        while j < len(spans):
            start, end = spans[j]
            if _GAP.fullmatch(text, pos, start):
                pass
            elif _COMMA_GAP.fullmatch(text, pos, start) and chain:
                if first_comma is None:
                    first_comma = len(chain)
            else:
                break
            last_gap = text[pos:start]
            chain.append(j)
            pos = end
            j += 1
        if first_comma is not None and not _OR.search(last_gap):
            chain = chain[:first_comma]
        return chain


DEFAULT_DETECTOR = NegationDetector()


def find_negated(text: str, spans: Sequence[tuple[int, int]]) -> list[bool]:
    """Which phrase ``spans`` of ``text`` are negated, with the default cue lists.

    See :meth:`NegationDetector.negated`.
    """
    return DEFAULT_DETECTOR.negated(text, spans)


def negate_terms(text: str, terms: Iterable[str]) -> list[tuple[str, bool]]:
    """Find ``terms`` in ``text`` (longest first) and say whether each occurrence is negated.

    A convenience for tests and exploration; the classifier passes its own spans.

    Parameters
    ----------
    text : str
        The complaint (simplified characters).
    terms : iterable of str
        Symptom phrases to look for.

    Returns
    -------
    list of (str, bool)
        Each occurrence in order: the matched text and whether it is negated.

    Examples
    --------
    >>> negate_terms("无发热，咳嗽2天", ["发热", "咳嗽"])
    [('发热', True), ('咳嗽', False)]
    """
    pattern = re.compile(_alternation(terms), re.IGNORECASE)
    matches = list(pattern.finditer(text))
    flags = find_negated(text, [m.span() for m in matches])
    return [(m.group(), flag) for m, flag in zip(matches, flags, strict=True)]
