import numpy as np

from sentinel.simulator.categories import CATEGORIES, CATEGORY_INDEX
from sentinel.simulator.complaints import make_complaints


def _complaints(
    category: str, n: int = 3000, febrile: bool = False, child: bool = False
) -> list[str]:
    rng = np.random.default_rng(7)
    cat = np.full(n, CATEGORY_INDEX[category])
    return make_complaints(cat, np.full(n, febrile), np.full(n, child), rng)


def test_respiratory_complaints_mention_respiratory_symptoms_and_often_negate_fever() -> None:
    texts = _complaints("respiratory")
    zh = [t for t in texts if not t.isascii()]
    assert all(
        any(k in t for k in ("咳", "咽", "喉", "涕", "喷嚏", "喘", "胸闷", "胸悶", "气促", "氣促"))
        for t in zh
    )
    negated = [t for t in zh if any(f"{neg}发" in t for neg in ("无", "否认", "不伴", "未见"))]
    assert 0.1 < len(negated) / len(zh) < 0.5


def test_febrile_ili_says_fever() -> None:
    texts = _complaints("ili", febrile=True)
    fever_words = ("发热", "发烧", "高热", "低热", "發熱", "發燒", "fever", "febrile")
    assert sum(any(w in t for w in fever_words) for t in texts) / len(texts) > 0.95


def test_style_mix_english_traditional_typos() -> None:
    texts = _complaints("gastrointestinal", n=6000)
    english = sum(t.isascii() for t in texts) / len(texts)
    assert 0.02 < english < 0.07
    assert any("腹写" in t for t in texts)  # typo
    assert any("瀉" in t or "嘔" in t for t in texts)  # traditional characters
    assert len(set(texts)) > 300


def test_child_prefix_only_for_children_and_every_category_composes() -> None:
    assert not any(t.startswith("患儿") for t in _complaints("fever", child=False))
    assert any(t.startswith("患儿") for t in _complaints("fever", child=True))
    for c in CATEGORIES:
        texts = _complaints(c.name, n=200)
        assert all(t.strip() for t in texts)


def test_deterministic() -> None:
    assert _complaints("hfmd") == _complaints("hfmd")
