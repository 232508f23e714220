import pytest

from transform.negation import NegationDetector, find_negated, negate_terms

SYMPTOMS = [
    "发热", "咳嗽", "咽痛", "腹泻", "呕吐", "皮疹", "诱因", "流涕", "恶心", "抽搐", "喷射性呕吐",
    "fever", "cough", "diarrhea", "sore throat", "rash", "vomiting", "runny nose", "nausea",
]  # fmt: skip


def negated(text: str) -> dict[str, bool]:
    """Each symptom found in ``text`` → negated (all its occurrences agree in these cases)."""
    return {term.lower(): flag for term, flag in negate_terms(text, SYMPTOMS)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a list joined by 、/和/及 stays in scope; punctuation ends it
        ("无发热、咳嗽", {"发热": True, "咳嗽": True}),
        ("无发热，咳嗽2天", {"发热": True, "咳嗽": False}),
        ("无发热和咳嗽", {"发热": True, "咳嗽": True}),
        ("否认发热及咳嗽，腹泻1天", {"发热": True, "咳嗽": True, "腹泻": False}),
        ("无发热咳嗽，腹泻", {"发热": True, "咳嗽": True, "腹泻": False}),
        # 不伴 is a trigger, 伴 a terminator
        ("不伴发热", {"发热": True}),
        ("咽痛不伴发热", {"咽痛": False, "发热": True}),
        ("无发热伴咳嗽", {"发热": True, "咳嗽": False}),
        # scope runs forward only
        ("发热无咳嗽", {"发热": False, "咳嗽": True}),
        ("发热3天，无咳嗽咽痛，无腹泻", {"发热": False, "咳嗽": True, "咽痛": True, "腹泻": True}),
        # pseudo-negations
        ("无明显诱因出现咳嗽", {"诱因": False, "咳嗽": False}),
        ("无明显诱因发热2天", {"诱因": False, "发热": False}),
        ("腹泻未见好转", {"腹泻": False}),
        ("不能排除皮疹", {"皮疹": False}),
        ("非喷射性呕吐", {"喷射性呕吐": True}),
        # fillers between trigger and symptom
        ("无明显发热", {"发热": True}),
        ("未见皮疹", {"皮疹": True}),
        ("未出现皮疹，发热", {"皮疹": True, "发热": False}),
        ("没有发烧，腹泻", {"腹泻": False}),
        ("排除手足口，发热", {"发热": False}),
        # post-triggers
        ("皮疹(-)，咳嗽", {"皮疹": True, "咳嗽": False}),
        ("抽搐阴性，发热", {"抽搐": True, "发热": False}),
        # English
        ("no fever but cough", {"fever": True, "cough": False}),
        ("no fever, cough x2d", {"fever": True, "cough": False}),
        ("denies fever, cough, or diarrhea", {"fever": True, "cough": True, "diarrhea": True}),
        (
            "fever and cough x2d, denies diarrhea",
            {"fever": False, "cough": False, "diarrhea": True},
        ),
        ("cough without fever", {"cough": False, "fever": True}),
        ("no nausea or vomiting", {"nausea": True, "vomiting": True}),
        ("nausea, no vomiting", {"nausea": False, "vomiting": True}),
        ("runny nose, negative for fever", {"runny nose": False, "fever": True}),
        ("No fever. Sore throat", {"fever": True, "sore throat": False}),
        ("DENIES ANY RASH", {"rash": True}),
        ("no improvement in cough", {"cough": False}),
        ("w/o fever, diarrhea x3", {"fever": True, "diarrhea": False}),
    ],
)
def test_scope(text: str, expected: dict[str, bool]) -> None:
    assert negated(text) == expected


def test_no_is_a_whole_word() -> None:
    assert negated("runny nose") == {"runny nose": False}
    assert negate_terms("nothing new, fever", ["fever"]) == [("fever", False)]


def test_spans_inside_cues_and_empty_input() -> None:
    assert find_negated("无发热", []) == []
    assert find_negated("", []) == []


def test_custom_detector_uses_only_its_cues() -> None:
    detector = NegationDetector(pre_triggers=["sans"], pseudo_triggers=[], post_triggers=[])
    text = "sans fever, no cough"
    spans = [(5, 10), (15, 20)]
    assert detector.negated(text, spans) == [True, False]
    with pytest.raises(ValueError, match="at least one"):
        NegationDetector(pre_triggers=[], pseudo_triggers=[], post_triggers=[])


def test_cues_are_reported_with_kind() -> None:
    detector = NegationDetector()
    kinds = [(c.text, c.kind) for c in detector.find_cues("无明显诱因出现咳嗽，无发热，皮疹(-)")]
    assert kinds == [("无明显诱因", "pseudo"), ("无", "pre"), ("(-)", "post")]
