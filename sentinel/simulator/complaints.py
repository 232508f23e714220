"""Chief complaints written the way clinicians write them.

Short Chinese phrases (主诉): symptoms joined by 、/伴/，, a duration, often a negated
contrasting symptom (无发热, 否认腹泻, 不伴呕吐 …), colloquialisms (拉肚子, 发烧), common
typos (咳漱, 腹写), a few traditional-character complaints and some English ones from the
district's international clinics. The text depends on the category and on whether the
patient is febrile, so a classifier has real work to do.
"""

from __future__ import annotations

import numpy as np

from sentinel.simulator.categories import CATEGORIES

# Each symptom: (Chinese variants, English variants).
Symptom = tuple[tuple[str, ...], tuple[str, ...]]
FEVER: Symptom = (("发热", "发热", "发烧", "高热", "发热", "低热"), ("fever", "febrile", "fever"))
COUGH: Symptom = (
    ("咳嗽", "咳嗽", "咳嗽咳痰", "干咳", "咳"),
    ("cough", "productive cough", "dry cough"),
)
THROAT: Symptom = (("咽痛", "咽喉痛", "喉咙痛", "咽痛"), ("sore throat", "throat pain"))
NOSE: Symptom = (
    ("流涕", "鼻塞流涕", "流鼻涕", "打喷嚏"),
    ("runny nose", "sneezing", "nasal congestion"),
)
ACHE: Symptom = (("全身酸痛", "乏力", "肌肉酸痛", "畏寒"), ("myalgia", "malaise", "chills"))
WHEEZE: Symptom = (("气喘", "胸闷", "气促"), ("wheezing", "shortness of breath", "chest tightness"))
DIARRHOEA: Symptom = (
    ("腹泻", "腹泻", "拉肚子", "稀便", "水样便", "腹泻4次"),
    ("diarrhea", "diarrhoea", "loose stools", "watery stool"),
)
VOMIT: Symptom = (("呕吐", "恶心呕吐", "恶心"), ("vomiting", "nausea and vomiting", "nausea"))
BELLY: Symptom = (("腹痛", "上腹痛", "脐周痛", "肚子痛"), ("abdominal pain", "stomach ache"))
RASH: Symptom = (
    ("皮疹", "出疹", "全身红疹", "躯干疱疹"),
    ("rash", "skin rash", "blisters on trunk"),
)
HANDFOOT: Symptom = (
    ("手足皮疹", "手足疱疹", "手足红疹"),
    ("rash on hands and feet", "blisters on palms and soles"),
)
MOUTH: Symptom = (
    ("口腔疱疹", "口腔溃疡", "口腔疱疹", "口痛拒食"),
    ("mouth ulcers", "oral blisters"),
)
EYES: Symptom = (
    ("双眼红", "眼红伴分泌物增多", "双眼发红流泪", "结膜充血", "眼红、眼屎多"),
    ("red eyes with discharge", "red watery eyes", "conjunctival redness"),
)
NEURO: Symptom = (
    ("抽搐", "惊厥", "意识不清", "颈项强直", "神志模糊"),
    ("seizure", "convulsion", "confusion", "neck stiffness"),
)
YELLOW: Symptom = (
    ("皮肤黄染", "巩膜黄染", "皮肤巩膜黄染", "尿黄"),
    ("jaundice", "yellow eyes", "yellow skin"),
)
HEADACHE: Symptom = (("头痛", "头晕", "头昏", "头痛头晕"), ("headache", "dizziness"))
INJURY: Symptom = (
    ("摔伤", "右踝扭伤", "左手切割伤", "跌倒致腰部疼痛", "外伤"),
    ("fall injury", "sprained ankle", "cut on hand"),
)
CHRONIC: Symptom = (
    ("高血压复诊配药", "糖尿病随访", "慢病配药", "血压控制不佳", "冠心病复诊"),
    ("hypertension follow-up", "diabetes follow-up", "prescription refill"),
)
OTHER: Symptom = (
    ("腰痛", "尿频尿急", "体检", "皮肤瘙痒", "失眠", "开药", "关节痛", "反酸"),
    ("back pain", "urinary frequency", "check-up", "itchy skin", "insomnia"),
)

# Per category: (required groups: pick one symptom from each), (optional extras), (contrasts
# that may be negated). A required group lists alternatives.
BANK: dict[
    str, tuple[tuple[tuple[Symptom, ...], ...], tuple[Symptom, ...], tuple[Symptom, ...]]
] = {
    "ili": (((FEVER,), (COUGH, THROAT)), (NOSE, ACHE, HEADACHE), (DIARRHOEA, RASH)),
    "fever": (((FEVER,),), (ACHE, HEADACHE), (COUGH, DIARRHOEA, RASH)),
    "respiratory": (
        ((COUGH, THROAT, NOSE, WHEEZE),),
        (COUGH, THROAT, NOSE),
        (FEVER, FEVER, DIARRHOEA),
    ),
    "gastrointestinal": (
        ((DIARRHOEA, VOMIT, BELLY),),
        (DIARRHOEA, VOMIT, BELLY),
        (FEVER, FEVER, COUGH),
    ),
    "rash": (((RASH,),), (FEVER,), (COUGH, DIARRHOEA)),
    "hfmd": (((HANDFOOT,), (MOUTH,)), (FEVER,), (COUGH, DIARRHOEA)),
    "conjunctivitis": (((EYES,),), (), (FEVER, COUGH)),
    "neurological": (((NEURO,),), (FEVER, HEADACHE, VOMIT), (DIARRHOEA,)),
    "jaundice": (((YELLOW,),), (ACHE,), (FEVER, BELLY)),
    "injury": (((INJURY,),), (), (HEADACHE, VOMIT)),
    "chronic": (((CHRONIC,),), (), (FEVER, HEADACHE)),
    "headache_dizziness": (((HEADACHE,),), (), (FEVER, VOMIT)),
    "other": (((OTHER,),), (), (FEVER,)),
}

NEGATIONS_ZH = ("无", "无", "否认", "不伴", "未见", "无明显")
NEGATIONS_EN = ("no ", "denies ", "without ")
DURATIONS_ZH = (
    "1天",
    "2天",
    "3天",
    "半天",
    "1天余",
    "2天余",
    "5天",
    "1周",
    "3小时",
    "10小时",
    "4天",
)
DURATIONS_EN = (" x1d", " x2d", " for 3 days", " since yesterday", " for 1 week", " today")
PREFIXES_ZH = ("", "", "", "", "", "", "无明显诱因出现", "反复", "")
PREFIXES_CHILD_ZH = ("", "", "患儿", "患儿", "患儿")
NO_PREFIX = frozenset({"chronic", "other", "injury"})
NO_DURATION = frozenset({"chronic"})
TYPOS = (("咳嗽", "咳漱"), ("腹泻", "腹写"), ("咽痛", "咽疼"), ("呕吐", "呕土"), ("发热", "发熱"))
TRADITIONAL = str.maketrans(
    "发热烧头咳痰咽痛喉涕鼻腹泻呕吐恶心无伴红疹疱溃疡晕颈项强黄识气闷样儿乏肤胀",
    "發熱燒頭咳痰咽痛喉涕鼻腹瀉嘔吐噁心無伴紅疹皰潰瘍暈頸項強黃識氣悶樣兒乏膚脹",
)
ENGLISH_SHARE = 0.04
TRADITIONAL_SHARE = 0.015
TYPO_SHARE = 0.04
NEGATION_SHARE = 0.35


def _choose(options: tuple[str, ...], u: float) -> str:
    return options[min(int(u * len(options)), len(options) - 1)]


def _compose(
    category: str, febrile: bool, child: bool, english: bool, u: np.ndarray
) -> tuple[str, bool]:
    """One complaint; ``u`` holds 12 uniforms. Returns (text, mentions fever)."""
    required, optional, contrasts = BANK[category]
    lang = 1 if english else 0
    parts: list[Symptom] = [
        group[min(int(u[i] * len(group)), len(group) - 1)] for i, group in enumerate(required)
    ]
    if optional and u[3] < 0.45:
        parts.append(optional[min(int(u[4] * len(optional)), len(optional) - 1)])
    if (
        febrile
        and FEVER not in parts
        and category in ("rash", "hfmd", "neurological", "gastrointestinal", "fever")
    ):
        parts.insert(0, FEVER)
    seen: list[str] = []
    for k, symptom in enumerate(parts):
        text = _choose(symptom[lang], float(u[(5 + k) % 12]))
        if text not in seen:
            seen.append(text)
    mentions_fever = FEVER in parts
    if english:
        body = ", ".join(seen[:-1]) + (" and " if len(seen) > 1 else "") + seen[-1]
        text = body + ("" if category in NO_DURATION else _choose(DURATIONS_EN, float(u[9])))
    else:
        joiner = _choose(("伴", "、", "，", "伴"), float(u[10]))
        prefixes = PREFIXES_CHILD_ZH if child else PREFIXES_ZH
        prefix = "" if category in NO_PREFIX else _choose(prefixes, float(u[11]))
        duration = "" if category in NO_DURATION else _choose(DURATIONS_ZH, float(u[9]))
        text = prefix + joiner.join(seen) + duration
    candidates = [c for c in contrasts if c not in parts and not (c is FEVER and febrile)]
    if candidates and u[8] < NEGATION_SHARE:
        contrast = candidates[min(int(u[2] * len(candidates)), len(candidates) - 1)]
        neg_u = float((u[2] * 7.0) % 1.0)
        if english:
            text += ", " + _choose(NEGATIONS_EN, neg_u) + contrast[1][0]
        else:
            text += "，" + _choose(NEGATIONS_ZH, neg_u) + contrast[0][0]
    return text, mentions_fever


def make_complaints(
    category_idx: np.ndarray, febrile: np.ndarray, child: np.ndarray, rng: np.random.Generator
) -> list[str]:
    """Chief complaints for visits of the given categories.

    Parameters
    ----------
    category_idx : ndarray of int
        Index into :data:`sentinel.simulator.categories.CATEGORIES` per visit.
    febrile : ndarray of bool
        Whether the patient has a fever (the complaint then usually says so).
    child : ndarray of bool
        Whether the patient is a child (complaints may start with 患儿).
    rng : numpy.random.Generator
        Source of all randomness (deterministic given its state).
    """
    n = category_idx.shape[0]
    u = rng.random((n, 12))
    style = rng.random((n, 3))
    names = [c.name for c in CATEGORIES]
    out: list[str] = []
    for i in range(n):
        english = bool(style[i, 0] < ENGLISH_SHARE)
        text, _ = _compose(names[category_idx[i]], bool(febrile[i]), bool(child[i]), english, u[i])
        if not english:
            if style[i, 1] < TYPO_SHARE:
                wrong, typo = TYPOS[int(style[i, 2] * len(TYPOS)) % len(TYPOS)]
                text = text.replace(wrong, typo)
            elif style[i, 1] > 1.0 - TRADITIONAL_SHARE:
                text = text.translate(TRADITIONAL)
        out.append(text)
    return out
